"""Escaping user and message text for Markdown output (the UI's panels, reports and messages).

Text such as "sub-folders named <repeats>_<name>" is not Markdown: unescaped, the page would take
`<repeats>` for an HTML tag and drop it, and `_..._` for emphasis. CommonMark lets a backslash escape any
ASCII punctuation, which then shows as itself.
"""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-!|~&])")


def escape(text: object) -> str:
    """`text` as Markdown that renders to exactly `text` (line breaks kept)."""
    return _SPECIAL.sub(r"\\\1", str(text))
