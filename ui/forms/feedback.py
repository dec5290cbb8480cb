"""Showing findings: each one in the error slot beside its field, and all of them in a summary."""

from __future__ import annotations

from trainer.config import Finding, params_by_path
from trainer.markdown import escape
from ui.forms.widgets import label_of
from ui.i18n import translate


def slot_text(findings: list[Finding], lang: str) -> str:
    """What one field's error slot shows: one line per finding about that field."""
    lines = []
    for f in findings:
        msg = escape(f.zh if lang == "zh" else f.en)  # holds what the user typed
        level = "error" if f.level == "error" else "warning"
        lines.append(f"**{translate('forms.' + level, lang)}** {msg}")
    return "\n\n".join(lines)


def _where(field: str, lang: str) -> str:
    """A readable name for a finding's field: the label the form shows, and the key for searching docs."""
    p = params_by_path().get(field)
    return f"**{label_of(p, lang)}** (`{field}`)" if p else (f"`{field}`" if field else "")


def summary_text(findings: list[Finding], lang: str) -> str:
    """The list under the buttons, errors first; tells the user plainly when all is well."""
    errors = [f for f in findings if f.level == "error"]
    warnings = [f for f in findings if f.level != "error"]
    if not findings:
        return translate("forms.summary_ok", lang)
    parts = []
    for group, key in ((errors, "forms.summary_errors"), (warnings, "forms.summary_warnings")):
        if group:
            parts.append(translate(key, lang, n=len(group)))
            for f in group:
                msg = escape(f.zh if lang == "zh" else f.en)
                where = _where(f.field, lang)
                parts.append(f"- {where}: {msg}" if where else f"- {msg}")
    return "\n".join(parts)


def by_field(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        out.setdefault(f.field, []).append(f)
    return out
