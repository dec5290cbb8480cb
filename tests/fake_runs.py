"""Run folders written the way the engine writes them, without an engine: for the run panels' tests and the
page benchmark (bench/page_cpu.py)."""

from __future__ import annotations

import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from trainer.config import config_from_dict, save_config
from trainer.events import PID_FILE, EventWriter


def finished_run(runs_dir: Path, run_id: str, name: str, with_file: bool = False) -> None:
    """with_file: the run saved `output/<name>.safetensors` (a stand-in file), which the monitor lists."""
    run_dir = runs_dir / run_id
    save_config(config_from_dict({"save": {"output_name": name}}), run_dir / "config.toml")
    ev = EventWriter(run_dir)
    ev.emit("started", total_steps=6, epochs=1, steps_per_epoch=6, images=2, device="cpu", family="sd15")
    for step in range(1, 7):
        ev.emit("progress", step=step, total=6, epoch=1, epochs=1, loss=1 / step, avg_loss=0.5, lr={}, it_s=1.0,
                eta_s=0)
    outputs = []
    if with_file:
        (run_dir / "output").mkdir(exist_ok=True)
        outputs.append(str(run_dir / "output" / f"{name}.safetensors"))
        Path(outputs[0]).write_bytes(b"stand-in")
    ev.emit("finished", step=6, outputs=outputs)
    ev.close()


def stopped_run(runs_dir: Path, run_id: str, name: str, base_model: Path, dataset: Path, step: int) -> Path:
    """A run of `base_model` on `dataset` that the user stopped at `step` of 60: its state folder (a stand-in:
    progress.json only) is what the run panel offers to continue from. Returns the state folder."""
    run_dir = runs_dir / run_id
    save_config(config_from_dict({"model": {"base_model": str(base_model)}, "save": {"output_name": name},
                                  "dataset": {"train_data_dir": str(dataset)}}), run_dir / "config.toml")
    state = run_dir / "output" / f"{name}-state"
    state.mkdir(parents=True)
    (state / "progress.json").write_text(f'{{"global_step": {step}, "epoch": 0, "batches_in_epoch": {step}}}')
    ev = EventWriter(run_dir)
    ev.emit("started", total_steps=60, epochs=2, steps_per_epoch=30, images=20, device="cpu", family="sd15")
    for i in range(1, step + 1):
        ev.emit("progress", step=i, total=60, epoch=1, epochs=2, loss=0.5, avg_loss=0.5, lr={}, it_s=1.0, eta_s=0)
    ev.emit("stopped", step=step, outputs=[])
    ev.close()
    return state


@contextmanager
def live_run(runs_dir: Path, run_id: str = "20260101-100000-000-live", per_second: float = 4.0):
    """A training run whose steps advance until the block ends. Its pid file names a live stand-in process with
    the run folder on its command line, which is how the app tells a run's engine from a reused pid."""
    run_dir = runs_dir / run_id
    save_config(config_from_dict({"save": {"output_name": "live"}}), run_dir / "config.toml")
    engine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(10**6)", str(run_dir)])
    (run_dir / PID_FILE).write_text(str(engine.pid))
    ev = EventWriter(run_dir)
    ev.emit("started", total_steps=10**6, epochs=1, steps_per_epoch=10**6, images=2, device="cpu", family="sd15")
    done = threading.Event()

    def write():
        step = 0
        while not done.wait(1 / per_second):
            step += 1
            ev.emit("progress", step=step, total=10**6, epoch=1, epochs=1, loss=1 / step, avg_loss=0.5, lr={},
                    it_s=per_second, eta_s=10**5)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        yield run_dir
    finally:
        done.set()
        writer.join()
        ev.close()
        engine.kill()
        engine.wait()
