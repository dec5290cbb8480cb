"""One form for a failure shown in a tab's message area."""

from __future__ import annotations

from trainer.markdown import escape


def failure(t, exc: object) -> str:
    """'❌ Error: <text>' as Markdown: the word for readers without an emoji font, the text escaped so that
    paths and '<repeats>_<name>' survive."""
    return f"❌ {t('forms.error')} {escape(exc)}"
