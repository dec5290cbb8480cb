"""Where a run's saves go and how their folders are named. Light on purpose (no torch): the app reads it to offer
"Continue from step N" without loading the engine."""

from __future__ import annotations

import json
from pathlib import Path

STATE_SUFFIX = "-state"  # a resumable training state, beside the save it belongs to
DIFFUSERS_SUFFIX = "-diffusers"  # a Dreambooth save's diffusers folder beside its file


def out_dir_of(cfg, run_dir: Path) -> Path:
    """save.output_dir, else the run folder's output/."""
    return Path(cfg.save.output_dir) if cfg.save.output_dir else run_dir / "output"


def latest_state(folder: Path) -> tuple[Path, int] | None:
    """The saved state in `folder` furthest into training, with its step; None when there is none."""
    found = []
    for path in folder.glob(f"*{STATE_SUFFIX}") if folder.is_dir() else ():
        try:
            found.append((json.loads((path / "progress.json").read_text(encoding="utf-8"))["global_step"], path))
        except (OSError, ValueError, KeyError, TypeError):  # a half-written or foreign folder: not one to offer
            continue
    return (max(found)[1], max(found)[0]) if found else None
