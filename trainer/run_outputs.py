"""Where a run's saves go and how their folders are named. Light on purpose (no torch): the app reads it to offer
"Continue from step N" without loading the engine."""

from __future__ import annotations

import json
import re
from pathlib import Path

STATE_SUFFIX = "-state"  # a resumable training state, beside the save it belongs to
DIFFUSERS_SUFFIX = "-diffusers"  # a Dreambooth save's diffusers folder beside its file


def epoch_name(output_name: str, epoch: int) -> str:
    return f"{output_name}-{epoch:06d}"


def step_name(output_name: str, step: int) -> str:
    return f"{output_name}-step{step:08d}"


def _saves_of(output_name: str) -> re.Pattern:
    """The names epoch_name, step_name and the final save give a run's files."""
    return re.compile(re.escape(output_name) + r"(-\d{6}|-step\d{8})?")


def out_dir_of(cfg, run_dir: Path) -> Path:
    """save.output_dir, else the run folder's output/."""
    return Path(cfg.save.output_dir) if cfg.save.output_dir else run_dir / "output"


def latest_state(folder: Path, output_name: str, since: float) -> tuple[Path, int] | None:
    """The state furthest into training that a run saving as `output_name` wrote in `folder` at or after `since`
    (a time stamp), with its step; None when there is none. A folder shared by several runs (save.output_dir)
    holds other names' states and older runs' states of the same name: never this run's to continue."""
    found, own = [], _saves_of(output_name)
    for path in folder.glob(f"*{STATE_SUFFIX}") if folder.is_dir() else ():
        if not own.fullmatch(path.name.removesuffix(STATE_SUFFIX)):
            continue
        try:
            progress = path / "progress.json"
            if progress.stat().st_mtime >= since:
                found.append((json.loads(progress.read_text(encoding="utf-8"))["global_step"], path))
        except (OSError, ValueError, KeyError, TypeError):  # a half-written or foreign folder: not one to offer
            continue
    if not found:
        return None
    step, path = max(found)
    return path, step
