"""The errors a user can cause, under one base class.

`launch.py` turns any `UserError` into one line, `ganjax: error: <message>`, and exit status 2;
every other exception is a bug and keeps its traceback. A new job or module raises one of these
(or a subclass of its own) and needs no registration anywhere.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix (a config value, a missing file); the message says how."""


class ConfigError(UserError, ValueError):
    """A config value that cannot work; the message names the key and the fix."""


class DatasetError(UserError, RuntimeError):
    """A dataset that cannot be loaded; the message names the cause and the fix."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that cannot be used for this config; the message names the fix."""


class TrainingError(UserError, RuntimeError):
    """Training cannot go on (e.g. a NaN loss); the message says what to change."""


class OutputExistsError(UserError, FileExistsError):
    """A job's output is already there; nothing is overwritten (the message names the fix)."""
