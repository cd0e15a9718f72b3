"""UniRes: model-based multi-contrast super-resolution (Brudfors et al.), in PyTorch."""
