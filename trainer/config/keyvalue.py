"""`key=value` option lists (optimizer_args): parsed once, here, for `check` and for the engine alike."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import Any


def parse_key_values(items: Iterable[str], field: str) -> dict[str, Any]:
    """["weight_decay=0.01", "betas=0.9,0.99"] -> {"weight_decay": 0.01, "betas": (0.9, 0.99)}.

    Values are Python literals where they parse as one, else true/false, else the text itself. Raises
    ValueError naming `field` and the entry for a missing or non-identifier key and for an unquoted second
    "=" (two settings run together, e.g. "a=b=c")."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"{field}: {item!r} is not key=value with a plain name, e.g. weight_decay=0.01")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            if "=" in text:
                raise ValueError(f"{field}: {item!r} has a second '='; write one key=value per entry, and quote "
                                 "a text value that contains '='") from None
            value = {"true": True, "false": False}.get(text.lower(), text)
        out[key] = value
    return out
