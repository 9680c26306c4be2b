"""Problems with what a user gave (a setting, a file, a model), worded for that user.

The command line prints them as one `error:` line and exits 2 (never a traceback); the UI shows them
in a box. Each carries the English text; subclasses add the structure the UI needs (the list of
problems of a config, the file/line/field of a data row).
"""
from __future__ import annotations


class UserError(ValueError):
    """Something the user can fix; the message says what and how."""


class ModelNotFound(UserError, FileNotFoundError):
    """The model is not a folder with config.json, not a prepared alias, nor a reachable or cached Hub id."""
