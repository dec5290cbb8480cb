"""A test double of the engine PROCESS (not of the UI code): `python this.py train --config C --run-dir D`.

It writes the files of trainer/events.py like the engine does, so the run manager's queue ordering,
stop, kill, crash detection and restart re-attach are exercised against a real child process.
Behaviour comes from the run folder's name: "crash" exits 1 without an end event, "slow" takes
about 0.5 s a step, "long" runs 400 steps. Holds no tests itself.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer.events import PID_FILE, EventWriter, stop_requested  # noqa: E402


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("verb")
    p.add_argument("--config", required=True)
    p.add_argument("--run-dir", required=True)
    args = p.parse_args(argv)
    run_dir = Path(args.run_dir)
    (run_dir / PID_FILE).write_text(str(os.getpid()))
    name = run_dir.name
    total = 400 if "long" in name else 6
    delay = 0.5 if "slow" in name else 0.05
    ev = EventWriter(run_dir)
    ev.emit("started", total_steps=total, epochs=2, steps_per_epoch=total // 2, images=3, device="cpu",
            family="sd15")
    log = (run_dir / "train.log").open("a", encoding="utf-8")
    avg = 0.0
    for step in range(1, total + 1):
        time.sleep(delay)
        loss = 1.0 / step
        avg = (avg * (step - 1) + loss) / step
        ev.emit("progress", step=step, total=total, epoch=1 + (step - 1) * 2 // total, epochs=2, loss=loss,
                avg_loss=avg, lr={"unet": 1e-4}, it_s=1 / delay, eta_s=(total - step) * delay)
        print(f"step {step}/{total} loss {loss:.4f}", file=log, flush=True)
        if "segv" in name and step == 2:  # dies by a signal, as an out-of-memory kill or a native crash does
            os.kill(os.getpid(), signal.SIGSEGV)
        if "crash" in name and step == 2:
            print("Traceback (most recent call last):\nRuntimeError: boom in the double", file=sys.stderr)
            return 1
        if stop_requested(run_dir):
            out = _save(run_dir, step)
            ev.emit("stopped", step=step, outputs=[out])
            return 0
    out = _save(run_dir, total)
    ev.emit("saved", step=total, epoch=2, path=out, kind="lora")
    ev.emit("finished", step=total, outputs=[out])
    return 0


def _save(run_dir: Path, step: int) -> str:
    out = run_dir / "output" / f"lora-{step:06d}.safetensors"
    out.parent.mkdir(exist_ok=True)
    out.write_bytes(b"not really a lora")
    return str(out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
