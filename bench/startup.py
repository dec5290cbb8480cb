"""Time to first use: `python app.py` until the page answers, and the Novice tab's Start (demo model, demo
dataset, default presets) until the engine reports its first training step.

    python bench/startup.py

Start is measured through the Novice tab's own callback (ui.tabs.novice._start_run, the code the button
runs, without a browser) and the run manager, so it covers building the config, the demo model (built on
the first Start only: "cold"; "warm" reuses it), spawning the engine, loading, caching and the first step.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def app_start(workspace: Path) -> float:
    """Seconds from spawning `python app.py` to its page answering HTTP (the browser tests' own starter)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from browser_app import running_app

    t0 = time.perf_counter()
    with running_app(workspace):
        return time.perf_counter() - t0


def _novice_form(ctx) -> tuple[dict, dict]:
    """The Novice tab's widget map and its default values, keyed by plain names instead of components."""
    from trainer.config.presets import list_presets
    from ui.tabs import novice

    memory = sorted((p for p in list_presets("memory") if p.family in (None, "sd15")), key=novice._gigabytes)
    w = {"ctx": ctx, **{k: k for k in ("preset", "memory", "model", "custom", "msg", "run_id", "start")},
         **{p: p for p in novice.FIELDS}}
    data = {"preset": list_presets("novice")[0].name, "memory": memory[0].name, "model": novice.DEMO, "custom": "",
            "dataset.train_data_dir": str(novice.DEMO_DATASET), "caption.trigger_word": "",
            "save.output_name": "bench"}
    data[novice.EPOCHS] = novice._preset_epochs(w, data)
    return w, data


def start_to_first_step(workspace: Path, timeout: float = 300) -> float:
    """Seconds from the Novice Start callback to the run's first progress event; the run is then killed."""
    from trainer.events import read_events
    from ui.context import AppContext
    from ui.runs.manager import RunManager
    from ui.tabs import novice

    ctx = AppContext(workspace)
    manager = RunManager(ctx.runs_dir)
    ctx.shared["runs"] = manager
    w, data = _novice_form(ctx)
    t0 = time.perf_counter()
    result = novice._start_run(w, data)
    run_id = result.get("run_id")
    if run_id is None:
        raise RuntimeError(f"Start did not queue a run: {result.get('msg')}")
    run_dir = manager.run_dir(run_id)
    try:
        while time.perf_counter() - t0 < timeout:
            events = read_events(run_dir)[0]
            if any(e["type"] == "progress" for e in events):
                return time.perf_counter() - t0
            ended = [e for e in events if e["type"] in ("error", "finished", "stopped")]
            if ended or manager.current() != run_id:
                raise RuntimeError(f"the run ended before its first step: {ended[-1] if ended else 'no events'}")
            time.sleep(0.05)
        raise TimeoutError(f"no progress event within {timeout} s (see {run_dir})")
    finally:
        manager.kill(run_id)  # the figure is taken; a stop would first save a LoRA nobody needs


def run(folder: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="danlu-startbench-") as tmp:
        ws = Path(folder or tmp) / "workspace"
        ws.mkdir(parents=True, exist_ok=True)
        out = {"app_start_s": app_start(ws)}
        out["start_cold_s"] = start_to_first_step(ws)  # builds the demo model
        out["start_warm_s"] = start_to_first_step(ws)
    return out


def main() -> int:
    r = run()
    print(f"app start to page answering: {r['app_start_s']:.1f} s")
    print(f"Start to first progress event, demo model: {r['start_cold_s']:.1f} s on the first Start (model "
          f"built), {r['start_warm_s']:.1f} s after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
