"""The app's and CLI's first-run demo model: the tiny SD1.5, built once into the workspace.

Kept apart from `trainer.models.tiny` so that finding an already built demo model imports no diffusers (a
`check` or `export` with the demo preset then answers in two seconds, not eight); the builder is imported only
when the model must be built.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

DEMO_NAME = "danlu-demo-sd15"
DONE_MARKER = ".danlu-complete"  # written last, so a folder without it is a half-written one


def ensure_demo_model(models_dir: Path) -> Path:
    """Build the tiny SD1.5 demo model into `models_dir/danlu-demo-sd15` once; return that folder.

    The model is written to a temporary sibling and renamed into place, so an interrupted build never
    leaves a folder that looks complete; a folder without the marker is rebuilt.
    """
    target = Path(models_dir) / DEMO_NAME
    if (target / DONE_MARKER).is_file():
        return target
    from trainer.models.tiny import build_tiny_sd15

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{DEMO_NAME}.", dir=target.parent))
    try:
        # The four-level variant downsamples 8x like real SD, so the demo trains on 8x8 latents: a CPU
        # finishes the one-click run in about a minute.
        build_tiny_sd15(seed=0, four_level=True).save_pretrained(staging, safe_serialization=True)
        (staging / DONE_MARKER).write_text("tiny random SD1.5 demo model built by Danlu\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)  # half-written by an earlier, interrupted build
        try:
            os.replace(staging, target)
        except OSError:
            if not (target / DONE_MARKER).is_file():  # not a concurrent build that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
