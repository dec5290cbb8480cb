"""A run's state as the UI shows it, folded incrementally from the files of trainer/events.py.

Beyond the engine's own statuses the UI knows: queued (waiting its turn), killed (the user killed the
process group), crashed (the process is gone without an end event; the console tail says why).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path

from trainer.events import END_TYPES, RunSummary, engine_pid, pid_alive, read_events

CONSOLE = "console.log"
LAUNCH_PID = "launch.pid"  # written by the UI right after spawning, before the engine writes engine.pid
KILLED = "KILLED"
EXIT_CODE = "exit_code"  # written by the UI when its child engine ends (Popen's returncode)
TAIL_BYTES = 16_384


def tail_lines(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a text file, reading only its end (logs can grow large)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - TAIL_BYTES))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def record_exit(run_dir: Path, returncode: int) -> None:
    (Path(run_dir) / EXIT_CODE).write_text(f"{returncode}\n", encoding="utf-8")


def exit_description(run_dir: Path) -> str:
    """How the engine process ended, in words: its exit code, or the signal that killed it."""
    try:
        code = int((Path(run_dir) / EXIT_CODE).read_text().strip())
    except (OSError, ValueError):
        return "The engine's exit code is unknown (the UI was restarted while it ran)."
    if code >= 0:
        return f"The engine ended with exit code {code}."
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    hint = " (often the system running out of memory)" if -code == signal.SIGKILL else ""
    return f"The engine was killed by {name}{hint}."


def launched_pid(run_dir: Path) -> int | None:
    pid = engine_pid(run_dir)
    if pid is not None:
        return pid
    try:
        return int((run_dir / LAUNCH_PID).read_text().strip())
    except (OSError, ValueError):
        return None


def engine_alive(run_dir: Path, pid: int) -> bool:
    """pid alive and, where /proc exists, really this run's engine (pids get reused; zombies have no
    command line)."""
    if not pid_alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():
        return True
    try:
        return Path(run_dir).name.encode() in cmdline.read_bytes()
    except OSError:
        return False


@dataclass
class RunWatch:
    """Keeps the byte offset into events.jsonl so each poll reads only what is new."""

    run_dir: Path
    offset: int = 0
    summary: RunSummary = field(default_factory=RunSummary)
    ended: bool = False

    def refresh(self, alive: bool | None = None, queued: bool = False) -> RunSummary:
        """Fold new events; `alive` overrides the pid check when the caller holds the process."""
        if not self.ended:
            self._read()
        if not self.ended:
            self._settle(alive, queued)
        return self.summary

    def _read(self) -> None:
        events, self.offset = read_events(self.run_dir, self.offset)
        for event in events:
            self.summary.fold(event)
            self.ended = self.ended or event.get("type") in END_TYPES

    def _settle(self, alive: bool | None, queued: bool) -> None:
        summary, run_dir = self.summary, self.run_dir
        pid = launched_pid(run_dir)
        if alive is None:
            alive = pid is not None and engine_alive(run_dir, pid)
        if (run_dir / KILLED).exists():
            summary.status, summary.message = "killed", tail_lines(run_dir / CONSOLE, 12)
            self.ended = True
        elif alive:
            summary.status = "running"
        elif pid is not None:
            self._read()  # the engine may have written its end event just before exiting
            if self.ended:
                return
            summary.status = "crashed"
            summary.message = exit_description(run_dir) + "\n" + tail_lines(run_dir / CONSOLE, 20)
            self.ended = True
        else:
            summary.status = "queued" if queued else "pending"
