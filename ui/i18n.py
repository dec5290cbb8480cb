"""UI strings in English and Simplified Chinese.

Strings live in assets/i18n/<area>.toml, one table per key: `start = { en = "Start", zh = "开始" }`.
The key used in code is "<area>.<key>" (e.g. "tagger.start"). Each area owns its file, so tabs never edit
one shared list. Training-parameter labels and help do not live here: they come from the schema.
"""

from __future__ import annotations

import locale
import os
import tomllib
from functools import lru_cache
from pathlib import Path

LANGS = ("en", "zh")
I18N_DIR = Path(__file__).resolve().parent.parent / "assets" / "i18n"


@lru_cache(maxsize=1)
def all_strings() -> dict[str, dict[str, str]]:
    strings: dict[str, dict[str, str]] = {}
    for path in sorted(I18N_DIR.glob("*.toml")):
        with path.open("rb") as fh:
            table = tomllib.load(fh)
        for key, value in table.items():
            missing = [lang for lang in LANGS if lang not in value]
            if missing:
                raise ValueError(f"{path.name}: string '{key}' lacks {missing}; add them")
            strings[f"{path.stem}.{key}"] = value
    return strings


def translate(key: str, lang: str, **fmt: object) -> str:
    entry = all_strings().get(key)
    if entry is None:
        raise KeyError(f"UI string '{key}' is not defined in assets/i18n/")
    text = entry.get(lang) or entry["en"]
    return text.format(**fmt) if fmt else text


def default_lang() -> str:
    """zh when the system locale is Chinese, else en."""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    code = (locale.getlocale()[0] or "").lower()
    return "zh" if code.startswith("zh") else "en"
