"""What can go wrong with a dataset, in a form the UI can list and a novice can act on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One file or folder that was skipped or needs attention.

    `level` is "warning" (training goes on without it) or "info" (nothing was skipped, just worth knowing).
    """

    file: str
    reason: str
    hint: str = ""
    level: str = "warning"

    @property
    def what(self) -> str:
        """The file and what is wrong with it, without the hint (shown apart where there is room)."""
        return f"{self.file}: {self.reason}"

    def __str__(self) -> str:
        return f"{self.what} ({self.hint})" if self.hint else self.what


class DatasetError(ValueError):
    """The dataset as a whole cannot be used; the message names the folder and the fix."""


class ImageLoadError(OSError):
    """One image could not be decoded. Callers skip it and report `problem`."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    @property
    def problem(self) -> Problem:
        return Problem(self.path, f"cannot read image: {self.reason}", "re-save or remove the file")
