"""`key=value` option lists (optimizer_args, lr_scheduler_args and piecewise_constant's step_rules in them): parsed
once, here, for `check` and for the engine alike."""

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


STEP_RULES_EXAMPLE = "step_rules=1:100,0.5:200,0.1"


def step_rules(items: Iterable[str], field: str) -> str:
    """piecewise_constant's rules: the one lr_scheduler_args entry step_rules=<rules>, as sd-scripts passes it to
    diffusers, checked as diffusers reads it ("1:100,0.5:200,0.1": x1 before step 100, x0.5 before step 200, then
    x0.1; sd-scripts' quoted form '...' too). Raises ValueError naming `field` and what is wrong."""
    args = parse_key_values(items, field)
    if list(args) != ["step_rules"]:
        others = ", ".join(k for k in args if k != "step_rules")
        raise ValueError(f"{field}: piecewise_constant takes one entry, its rules, e.g. {STEP_RULES_EXAMPLE}"
                         + (f"; it has no {others}" if others else ""))
    text = str(args["step_rules"]).replace(" ", "")
    *pairs, last = text.split(",")
    for pair in pairs:
        factor, sep, step = pair.partition(":")
        if not (sep and _factor(factor) and step.isdigit()):
            raise ValueError(f"{field}: step_rules '{pair}' is not factor:step (e.g. 0.5:200, x0.5 before step 200)")
    if not _factor(last):
        raise ValueError(f"{field}: step_rules end with '{last}', but the last rule is the factor after the last "
                         "step alone, e.g. ...,0.1")
    return text


def _factor(text: str) -> bool:
    """Whether `text` is a learning-rate factor diffusers reads (a float), finite and not negative."""
    try:
        return 0 <= float(text) < float("inf")
    except ValueError:
        return False
