"""The file contract between the engine and anything watching it (the UI, a shell, a test).

A run lives in `runs/<run-id>/`:
  config.toml    the complete config the run was started with
  events.jsonl   one JSON object a line; every object has "type" and "time" (unix seconds)
  train.log      the human-readable log
  tb/            TensorBoard event files
  output/        LoRA files (unless save.output_dir says elsewhere); samples/ preview images
  STOP           created by a watcher to ask for a graceful stop (save, then exit)
  engine.pid     the engine's process id while it runs

Event types and their fields:
  status    message, fraction (0..1 or null): loading, downloading, caching
  started   total_steps, epochs, steps_per_epoch, images, device, family
  progress  step, total, epoch, epochs, loss, avg_loss, lr {part: value}, it_s, eta_s
  sample    step, epoch, path, prompt
  saved     step, epoch, path, kind ("lora" | "state")
  warning   message, hint
  error     message, hint
  stopped   step, outputs
  finished  step, outputs
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVENTS = "events.jsonl"
STOP_FILE = "STOP"
PID_FILE = "engine.pid"
END_TYPES = ("finished", "stopped", "error")


class EventWriter:
    """Appends events; each line is flushed at once so a watcher sees it immediately."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / EVENTS
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")

    def emit(self, type_: str, **fields: Any) -> dict:
        event = {"type": type_, "time": round(time.time(), 3), **fields}
        self._fh.write(json.dumps(event, ensure_ascii=False) + "\n")
        self._fh.flush()
        return event

    def close(self) -> None:
        self._fh.close()


def read_events(run_dir: Path, offset: int = 0) -> tuple[list[dict], int]:
    """Events from byte `offset` on, and the offset to continue from. A half-written last line waits."""
    path = Path(run_dir) / EVENTS
    if not path.exists():
        return [], offset
    with path.open("rb") as fh:
        fh.seek(offset)
        data = fh.read()
    events, consumed = [], 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        consumed += len(line)
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events, offset + consumed


def request_stop(run_dir: Path) -> None:
    (Path(run_dir) / STOP_FILE).write_text("stop\n", encoding="utf-8")


def stop_requested(run_dir: Path) -> bool:
    return (Path(run_dir) / STOP_FILE).exists()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def engine_pid(run_dir: Path) -> int | None:
    try:
        return int((Path(run_dir) / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


@dataclass
class RunSummary:
    """What a watcher needs to draw a run: folded from its events."""

    status: str = "pending"  # pending | running | finished | stopped | failed | crashed
    step: int = 0
    total: int = 0
    epoch: int = 0
    epochs: int = 0
    loss: float | None = None
    avg_loss: float | None = None
    it_s: float | None = None
    eta_s: float | None = None
    message: str = ""
    hint: str = ""
    losses: list[tuple[int, float, float]] = field(default_factory=list)  # (step, loss, avg_loss)
    validation: list[tuple[int, float]] = field(default_factory=list)  # (step, validation loss)
    fit: dict | None = None  # the latest over/underfitting warning event (trainer/engine/overfit.py)
    samples: list[dict] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def fold(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "status":
            self.status, self.message = "running", event.get("message", "")
        elif kind == "started":
            self.status, self.total, self.epochs = "running", event["total_steps"], event["epochs"]
        elif kind == "progress":
            for key in ("step", "total", "epoch", "epochs", "loss", "avg_loss", "it_s", "eta_s"):
                setattr(self, key, event.get(key, getattr(self, key)))
            self.losses.append((event["step"], event["loss"], event["avg_loss"]))
        elif kind == "sample":
            self.samples.append(event)
        elif kind == "saved" and event.get("kind") == "lora":
            self.outputs.append(event["path"])
        elif kind == "validation":
            self.validation.append((event["step"], event["loss"]))
        elif kind == "warning":
            self.warnings.append(event.get("message", ""))
            self.fit = event if event.get("fit") else self.fit
        elif kind in END_TYPES:
            self.status = {"error": "failed"}.get(kind, kind)
            self.message, self.hint = event.get("message", ""), event.get("hint", "")
            self.outputs = event.get("outputs", self.outputs)


def summarize(run_dir: Path) -> RunSummary:
    events, _ = read_events(run_dir)
    summary = RunSummary()
    for event in events:
        summary.fold(event)
    if summary.status in ("running", "pending"):
        pid = engine_pid(run_dir)
        if summary.status == "running" and (pid is None or not pid_alive(pid)):
            summary.status = "crashed"
    return summary
