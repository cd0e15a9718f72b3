"""Pydra task wrappers around :mod:`srprep.core` (one call into core per task).

Tasks write their outputs into the job's working directory (Pydra's cache entry) and
never touch the user's output folder; the BIDS exporter does that outside Pydra.
"""
