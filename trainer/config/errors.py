"""Findings about a configuration: errors that stop a run and warnings that only inform."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    level: str  # "error" | "warning"
    field: str  # "group.name", or "" for the whole file
    en: str
    zh: str

    def text(self, lang: str = "en") -> str:
        msg = self.zh if lang == "zh" else self.en
        return f"{self.field}: {msg}" if self.field else msg

    def as_dict(self) -> dict:
        return {"level": self.level, "field": self.field, "en": self.en, "zh": self.zh}


def error(field: str, en: str, zh: str) -> Finding:
    return Finding("error", field, en, zh)


def warning(field: str, en: str, zh: str) -> Finding:
    return Finding("warning", field, en, zh)


class ConfigError(ValueError):
    """Raised when a configuration cannot be used; carries every error found, not just the first."""

    def __init__(self, findings: list[Finding], source: str = ""):
        self.findings = [f for f in findings if f.level == "error"] or findings
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(head + "; ".join(f.text() for f in self.findings))


def suggest(name: str, candidates: list[str]) -> str:
    """' Did you mean X?' for a mistyped key, or ''."""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def suggest_zh(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"是否想写 '{close[0]}'？" if close else ""
