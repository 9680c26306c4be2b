"""Errors about a user's data: each names the file, the line or row, the field, and what to do.

The message and the hint are catalogue messages (engine/core/messages.py) where the code gives them, so
the UI words them in its language; `to_dict` carries both forms.
"""
from __future__ import annotations

from engine.core.errors import UserError
from engine.core.messages import as_dict


class DataError(UserError):
    def __init__(self, file: str, message: str, *, where: str = "", field: str = "", hint: str = ""):
        self.file, self.where, self.field, self.message, self.hint = file, where, field, message, hint
        parts = [file] + [p for p in (where, f"field '{field}'" if field else "") if p]
        text = ", ".join(parts) + f": {message}"
        super().__init__(text + (f". {hint}" if hint else ""))

    def to_dict(self) -> dict:
        return {"file": self.file, "where": self.where, "field": self.field,
                "message": str(self.message), "hint": str(self.hint), "text": str(self),
                "message_i18n": as_dict(self.message), "hint_i18n": as_dict(self.hint)}


class FieldError(ValueError):
    """A problem inside one record; the loader adds the file and row to make a DataError."""

    def __init__(self, field: str, message: str, hint: str = ""):
        self.field, self.message, self.hint = field, message, hint
        super().__init__(f"{field}: {message}")
