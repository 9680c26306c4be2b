"""Errors about a user's data: each names the file, the line or row, the field, and what to do."""
from __future__ import annotations

from engine.core.errors import UserError


class DataError(UserError):
    def __init__(self, file: str, message: str, *, where: str = "", field: str = "", hint: str = ""):
        self.file, self.where, self.field, self.message, self.hint = file, where, field, message, hint
        parts = [file] + [p for p in (where, f"field '{field}'" if field else "") if p]
        text = ", ".join(parts) + f": {message}"
        super().__init__(text + (f". {hint}" if hint else ""))

    def to_dict(self) -> dict:
        return {"file": self.file, "where": self.where, "field": self.field,
                "message": self.message, "hint": self.hint, "text": str(self)}


class FieldError(ValueError):
    """A problem inside one record; the loader adds the file and row to make a DataError."""

    def __init__(self, field: str, message: str, hint: str = ""):
        self.field, self.message, self.hint = field, message, hint
        super().__init__(f"{field}: {message}")
