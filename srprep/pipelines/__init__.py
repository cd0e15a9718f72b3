"""Per-method Pydra workflows (``workflow.define``), composable in plain Python."""
