"""What the CLI prints never drives the terminal: captions and file names come from datasets someone else
may have made, and an ESC sequence in one could retitle the window, clear the screen or hide text.

Control characters other than newline, tab and carriage return (C0, DEL, C1) and the bidirectional
overrides are printed as visible `\\uXXXX` escapes, which also stay valid inside JSON strings.
"""

from __future__ import annotations

import re
import sys

_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    return _CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class EscapingWriter:
    """A text stream wrapper that escapes control characters in everything written through it."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(escape_controls(text))

    def __getattr__(self, name):  # flush, fileno, encoding, isatty ... from the real stream
        return getattr(self._stream, name)


def escape_terminal_output() -> None:
    """Wrap sys.stdout and sys.stderr (once)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, EscapingWriter):
            setattr(sys, name, EscapingWriter(stream))
