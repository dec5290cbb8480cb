"""What every tab receives: the workspace, the UI language and a translator."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ui.i18n import translate


@dataclass
class AppContext:
    workspace: Path
    lang: str = "en"
    shared: dict = field(default_factory=dict)  # cross-tab handles, e.g. the run manager

    def t(self, key: str, **fmt: object) -> str:
        return translate(key, self.lang, **fmt)

    @property
    def runs_dir(self) -> Path:
        return self.workspace / "runs"

    @property
    def models_dir(self) -> Path:
        return self.workspace / "models"

    @property
    def outputs_dir(self) -> Path:
        return self.workspace / "outputs"

    @property
    def cache_dir(self) -> Path:
        return self.workspace / "cache"
