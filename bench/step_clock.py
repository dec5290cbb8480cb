"""An optimizer-step clock that measures any PyTorch trainer the same way, so two trainers compare on equal terms:
a global optimizer hook stamps the time after every optimizer step (after a CUDA synchronize, so a stamp is when
the GPU finished the step), and the peak CUDA memory allocated is read at the end.

    python bench/step_clock.py OUT.json SCRIPT.py [ARGS ...]   # runs SCRIPT as __main__; OUT.json at its exit

In-process (Danlu's engine): `with step_clock() as stamps: train(...)`, then `summary(stamps, warmup)`.
The synchronize costs a trainer that never waits for the GPU a little; sd-scripts waits every step anyway (it
reads the loss), so the clock can only understate Danlu's lead.
"""

from __future__ import annotations

import contextlib
import json
import runpy
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook


@contextlib.contextmanager
def step_clock():
    stamps: list[float] = []

    def after_step(optimizer, args, kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    handle = register_optimizer_step_post_hook(after_step)
    try:
        yield stamps
    finally:
        handle.remove()


def summary(stamps: list[float], warmup: int) -> dict:
    """Median seconds per step over the steps after `warmup`, and the peak CUDA memory so far (None on a CPU)."""
    gaps = [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1:], strict=False)]
    s_step = statistics.median(gaps) if gaps else None
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    return {"steps": len(stamps), "timed_steps": len(gaps), "s_per_step": s_step,
            "it_s": 1 / s_step if s_step else None, "peak_gb": round(peak, 2) if peak is not None else None}


def main(argv: list[str]) -> int:
    out, script, *args = argv
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).resolve().parent))
    code = 1  # unless the script returns or exits 0; a crash still writes what was stamped
    with step_clock() as stamps:
        try:
            runpy.run_path(script, run_name="__main__")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            Path(out).write_text(json.dumps({"rc": code, "stamps": stamps, "peak_gb": summary(stamps, 0)["peak_gb"]}))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
