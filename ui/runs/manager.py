"""The run queue: one training at a time, each in its own engine process that outlives the UI.

State lives in files so a UI restart loses nothing: runs/queue.json is the queue, runs/<id>/ holds each
run (trainer/events.py). A restarted UI finds the running engine by its pid file and re-attaches.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from trainer.config import ConfigError, TrainConfig, load_config, save_config
from trainer.engine.launch import engine_command
from trainer.events import RunSummary, request_stop
from trainer.textio import plain_name
from ui.runs.status import (
    CONSOLE,
    EXIT_CODE,
    KILLED,
    LAUNCH_PID,
    RunWatch,
    engine_alive,
    launched_pid,
    record_exit,
)

QUEUE_FILE = "queue.json"
REPO_ROOT = Path(__file__).resolve().parents[2]
_MANAGERS: dict[Path, RunManager] = {}
_MANAGERS_LOCK = threading.Lock()


def get_manager(runs_dir: Path) -> RunManager:
    """One manager (and one scheduler thread) per runs folder per process, however often the UI is built."""
    key = Path(runs_dir).resolve()
    with _MANAGERS_LOCK:
        if key not in _MANAGERS:
            _MANAGERS[key] = RunManager(key)
            _MANAGERS[key].start()
        return _MANAGERS[key]


def _slug(name: str) -> str:
    return plain_name(name)[:40] or "run"


class RunManager:
    def __init__(self, runs_dir: Path, engine: list[str] | None = None, poll_s: float = 1.0):
        self.runs_dir = Path(runs_dir)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        # The argv before "train --config ... --run-dir ...": `python -m trainer` unless a test swaps it.
        self.engine = engine  # None: `python -m trainer`, through accelerate launch for several GPUs
        self.poll_s = poll_s
        self._lock = threading.RLock()
        self._proc: subprocess.Popen | None = None
        self._current: str | None = None
        self._watches: dict[str, RunWatch] = {}
        self._thread: threading.Thread | None = None
        self._reattach()

    # ----- queue -------------------------------------------------------------------------------
    def enqueue(self, cfg: TrainConfig, name: str) -> str:
        """Write runs/<id>/config.toml and put the run at the end of the queue; returns its id."""
        with self._lock:
            run_id = self._new_id(name)
            save_config(cfg, self.run_dir(run_id) / "config.toml")
            self._write_queue(self.queued() + [run_id])
        return run_id

    def queued(self) -> list[str]:
        try:
            ids = json.loads((self.runs_dir / QUEUE_FILE).read_text(encoding="utf-8")).get("queue", [])
        except (OSError, ValueError):
            return []
        return [i for i in ids if (self.run_dir(i) / "config.toml").exists()]

    def remove_from_queue(self, run_id: str) -> bool:
        """Take a waiting run out of the queue; its folder goes too since nothing ran in it."""
        with self._lock:
            queue = self.queued()
            if run_id not in queue:
                return False
            queue.remove(run_id)
            self._write_queue(queue)
            run_dir = self.run_dir(run_id)
            if not (run_dir / "events.jsonl").exists() and launched_pid(run_dir) is None:
                shutil.rmtree(run_dir, ignore_errors=True)
        return True

    def _write_queue(self, ids: list[str]) -> None:
        path = self.runs_dir / QUEUE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"queue": ids}, indent=1), encoding="utf-8")
        os.replace(tmp, path)  # atomic: a crash never leaves half a queue

    def _new_id(self, name: str) -> str:
        # Millisecond timestamps sort in creation order; bump until unused so ids never collide.
        stamp = time.time()
        while True:
            ms = int(stamp * 1000) % 1000
            run_id = f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(stamp))}-{ms:03d}-{_slug(name)}"
            try:
                self.run_dir(run_id).mkdir(parents=True)
                return run_id
            except FileExistsError:
                stamp += 0.001

    # ----- runs --------------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
            raise ValueError(f"not a run id: {run_id!r}")
        return self.runs_dir / run_id

    def current(self) -> str | None:
        """The run whose engine is alive now, if any."""
        with self._lock:
            if self._current and not self._alive():
                self._current, self._proc = None, None
            return self._current

    def summary(self, run_id: str) -> RunSummary:
        """The run's summary, reading only events appended since the last call."""
        with self._lock:
            watch = self._watches.get(run_id)
            if watch is None:
                watch = self._watches[run_id] = RunWatch(self.run_dir(run_id))
            alive = self._alive() if run_id == self._current else None
            return watch.refresh(alive=alive, queued=run_id in self.queued())

    def list_runs(self) -> list[tuple[str, RunSummary]]:
        """Every run folder, newest first."""
        ids = sorted((p.name for p in self.runs_dir.iterdir() if (p / "config.toml").exists()), reverse=True)
        return [(run_id, self.summary(run_id)) for run_id in ids]

    def stop(self, run_id: str) -> None:
        """Graceful: a waiting run leaves the queue; a launched one is asked to stop, which its engine honours
        at the next safe point (even before its first step: it then ends without training)."""
        if self.remove_from_queue(run_id):
            return
        request_stop(self.run_dir(run_id))  # the scheduler may have launched it meanwhile: ask its engine

    def kill(self, run_id: str) -> None:
        """Kill the engine's whole process group (it may have data-loader workers) and mark the run."""
        with self._lock:
            run_dir = self.run_dir(run_id)
            pid = launched_pid(run_dir)
            if pid is None or not engine_alive(run_dir, pid):
                return  # ended meanwhile: its pid may belong to another process by now
            (run_dir / KILLED).write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"), encoding="utf-8")
            if pid is not None:
                try:
                    os.killpg(pid, signal.SIGKILL)  # start_new_session made pid the group id
                except (ProcessLookupError, PermissionError):
                    pass
            if run_id == self._current and self._proc is not None:
                self._proc.wait(timeout=10)  # reap it so it is not a zombie that looks alive
            elif pid is not None:
                _wait_dead(run_dir, pid)  # an adopted engine: SIGKILL is delivered asynchronously
            self.current()

    def disk_bytes(self, run_id: str) -> int:
        """What the run's folder holds on disk (links not followed)."""
        return sum(p.lstat().st_size for p in self.run_dir(run_id).rglob("*") if p.is_file() and not p.is_symlink())

    def delete(self, run_id: str) -> int:
        """Remove an ended run's folder (its LoRAs, states, samples, logs); returns the bytes freed. A running
        or queued run is refused (ValueError saying what to do first). Files a run saved outside its folder
        (save.output_dir) are not touched."""
        with self._lock:
            run_dir = self.run_dir(run_id)
            if run_dir.resolve().parent != self.runs_dir.resolve() or not (run_dir / "config.toml").is_file():
                raise ValueError(f"no run {run_id!r} in {self.runs_dir}")
            if run_id == self.current():
                raise ValueError(f"run {run_id} is training. Stop it first, then delete it.")
            if run_id in self.queued():
                raise ValueError(f"run {run_id} waits in the queue. Remove it from the queue first.")
            freed = self.disk_bytes(run_id)
            shutil.rmtree(run_dir)
            self._watches.pop(run_id, None)
        return freed

    # ----- scheduling --------------------------------------------------------------------------
    def start(self) -> None:
        """Start the scheduler thread (once); it launches the next queued run whenever none runs."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="danlu-runs", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                self.tick()
            except Exception as exc:  # the scheduler must survive a bad run folder
                print(f"Danlu run scheduler: {exc!r}", file=sys.stderr, flush=True)
            time.sleep(self.poll_s)

    def tick(self) -> str | None:
        """One scheduling step: launch the head of the queue if nothing is running. Returns it."""
        with self._lock:
            if self.current() is not None:
                return None
            queue = self.queued()
            if not queue:
                return None
            run_id = queue.pop(0)
            self._write_queue(queue)
            self._launch(run_id)
            return run_id

    def _launch(self, run_id: str) -> None:
        run_dir = self.run_dir(run_id)
        cmd = self._command(run_dir)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        with (run_dir / CONSOLE).open("ab") as log:
            log.write(f"$ {' '.join(cmd)}\n".encode())
            log.flush()
            # A new session: the engine keeps training when the UI is restarted, and kill() can
            # signal its whole process group.
            self._proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=env,
            )
        (run_dir / LAUNCH_PID).write_text(f"{self._proc.pid}\n", encoding="utf-8")
        self._current = run_id

    def _command(self, run_dir: Path) -> list[str]:
        args = ["train", "--config", str(run_dir / "config.toml"), "--run-dir", str(run_dir)]
        if self.engine is not None:
            return self.engine + args
        try:
            speed = load_config(run_dir / "config.toml").speed
        except (ConfigError, OSError):  # the engine itself reports a bad config, in the run's events
            return [sys.executable, "-m", "trainer", *args]
        return engine_command(sys.executable, speed, args)

    def _alive(self) -> bool:
        if self._proc is not None:
            code = self._proc.poll()
            if code is not None and self._current and not (self.run_dir(self._current) / EXIT_CODE).exists():
                record_exit(self.run_dir(self._current), code)  # only the parent can know it: keep it
            return code is None
        run_dir = self.run_dir(self._current) if self._current else None
        pid = launched_pid(run_dir) if run_dir else None
        return pid is not None and engine_alive(run_dir, pid)

    def _reattach(self) -> None:
        """After a UI restart: adopt a run whose engine is still alive and has not ended."""
        for path in sorted(self.runs_dir.iterdir(), reverse=True) if self.runs_dir.exists() else []:
            pid = launched_pid(path) if path.is_dir() else None
            if pid is not None and engine_alive(path, pid) and not (path / KILLED).exists():
                if self.summary(path.name).status == "running":
                    self._current = path.name
                    return


def _wait_dead(run_dir: Path, pid: int, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while engine_alive(run_dir, pid) and time.time() < deadline:
        time.sleep(0.05)
