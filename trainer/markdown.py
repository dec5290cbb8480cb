"""Escaping user and message text for Markdown output (the UI's panels, reports and messages).

Text such as "sub-folders named <repeats>_<name>" is not Markdown: unescaped, the page would take
`<repeats>` for an HTML tag and drop it, and `_..._` for emphasis. CommonMark lets a backslash escape any
ASCII punctuation, which then shows as itself.
"""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-!|~&])")
# A bare http(s) URL, without the punctuation that ends a sentence or closes a bracket around it (one group, so
# re.split keeps the URLs at the odd places).
_URL = re.compile(r"(https?://[^\s<>()\[\]`]*[^\s<>()\[\]`.,;:!?'\"])")


def escape(text: object) -> str:
    """`text` as Markdown that renders to exactly `text` (line breaks kept). URLs become autolinks, <url>: the
    page links bare URLs itself, and took a backslash-escaped ')' after one into the link."""
    parts = _URL.split(str(text))
    return "".join(f"<{part}>" if i % 2 else _SPECIAL.sub(r"\\\1", part) for i, part in enumerate(parts))
