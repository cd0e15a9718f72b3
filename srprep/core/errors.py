"""Exception types shared by every layer."""
from __future__ import annotations


class SRPrepError(Exception):
    """Base class of srprep's own errors."""


class InputError(SRPrepError, ValueError):
    """Unusable input data.  The message is one line and names the offending file."""


class ConfigurationError(SRPrepError):
    """A setting, option combination or missing asset makes the run impossible."""
