"""Drawing a comparison grid in a child process (`python -m trainer grid`), as training runs in one.

The web server never loads a base model for a grid: a grid that exhausts memory, crashes in native code or
hangs takes only its own process down, and a time limit ends it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from trainer.grid.generate import GridRequest, check_request

REPO_ROOT = Path(__file__).resolve().parents[2]
TIME_LIMIT_S = 3600
_PROGRESS = re.compile(r"^\[(\d+)/(\d+)\] (.*)$")


def grid_command(req: GridRequest, cache_dir: Path, out: Path) -> list[str]:
    # "--opt=value": a prompt or weight list that starts with "-" is not taken for an option.
    cmd = [sys.executable, "-m", "trainer", "grid", f"--base={req.base}", f"--weights={','.join(map(repr, req.weights))}",
           f"--negative={req.negative}", f"--seed={req.seed}", f"--steps={req.steps}", f"--width={req.width}",
           f"--height={req.height}", f"--cfg={req.cfg}", f"--sampler={req.sampler}", f"--cache-dir={cache_dir}",
           f"--out={out}"]
    cmd += [f"--lora={lora}" for lora in req.loras]
    cmd += [f"--prompt={line}" for line in req.prompts.splitlines()]
    return cmd


def draw_in_child(req: GridRequest, *, cache_dir: Path, out: Path,
                  progress: Callable[[int, int, str], None] | None = None, time_limit_s: float = TIME_LIMIT_S) -> int:
    """Draw `req` into the PNG `out` in a child process; returns the number of cells. The request is checked
    here first (bounds, prompts), so a bad one fails at once. RuntimeError with the child's last words when it
    fails, or when it runs past `time_limit_s`."""
    cells = len(check_request(req)) * len(req.loras) * len(req.weights)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(grid_command(req, cache_dir, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, errors="replace", env=env, start_new_session=True)
    timer = threading.Timer(time_limit_s, _kill, args=(proc,))
    timer.start()
    last: list[str] = []
    try:
        for line in proc.stderr:
            match = _PROGRESS.match(line.strip())
            if match and progress:
                progress(int(match.group(1)), int(match.group(2)), match.group(3))
            elif line.strip():
                last = (last + [line.rstrip()])[-12:]
        code = proc.wait()
    finally:
        timer.cancel()
        _kill(proc)
    if code != 0:
        why = f"ran past {time_limit_s:.0f} s and was stopped" if code == -signal.SIGKILL else f"exit code {code}"
        raise RuntimeError(f"the grid process failed ({why}): " + "\n".join(last[-6:]))
    return cells


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the whole group, loader threads and all
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
