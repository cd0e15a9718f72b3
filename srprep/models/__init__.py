"""Torch networks and solvers, one module per method; the weights registry."""
