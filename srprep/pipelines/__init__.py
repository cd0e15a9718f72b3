"""Per-method Pydra workflows (``define_workflow``, i.e. Pydra's ``workflow.define``), composable in plain Python."""
