"""The CPU allocator setting (trainer/engine/host_memory.py) on and off, each engine run in a fresh process as the
app starts it, alternating for several rounds.

    python bench/host_memory.py [--steps 8] [--rounds 3] [--json out.json]

Full-size SD1.5 with random weights, 64 px, batch 2, LoRA on the U-Net, fp32 (the engine_overhead.py case). Per
process: the median CPU time a step (warm-up steps left out), system CPU time and minor page faults of the run,
and the process's peak RSS. Without the setting, glibc may or may not page-fault the convolutions' large buffers
in again every step, depending on how earlier frees left its heap, so steps differ between identical processes:
the table lists every process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODES = ("default", "keep")  # malloc as glibc sets it; the engine's CPU setting


def child(mode: str, model: Path, data: Path, run_dir: Path, steps: int) -> dict:
    """One engine run in this process; `default` switches the engine's setting off for the comparison."""
    if mode == "default":
        import trainer.engine.session as session

        session.keep_freed_blocks = lambda device: None
    from bench.engine_overhead import SKIP, engine_config, engine_step_times

    cfg = engine_config(model, data, "sd15", "full", [], training__max_train_steps=steps + SKIP["full"] + 1,
                        training__network_train_unet_only=True)
    t0, r0 = os.times(), resource.getrusage(resource.RUSAGE_SELF)
    times = engine_step_times(cfg, run_dir, SKIP["full"])
    t1, r1 = os.times(), resource.getrusage(resource.RUSAGE_SELF)
    steps_run = steps + SKIP["full"] + 1
    return {"mode": mode, "cpu_s": statistics.median(c for _, c in times),
            "wall_s": statistics.median(w for w, _ in times), "sys_s": t1.system - t0.system,
            "faults_per_step": (r1.ru_minflt - r0.ru_minflt) / steps_run, "peak_rss_gb": r1.ru_maxrss / 2**20}


def measure(model: Path, data: Path, tmp: Path, steps: int, rounds: int, log=print) -> dict:
    runs: dict[str, list[dict]] = {m: [] for m in MODES}
    for r in range(rounds):
        for mode in MODES if r % 2 == 0 else MODES[::-1]:  # neither always first: the machine may drift
            out = tmp / f"host-{r}-{mode}.json"
            cmd = [sys.executable, __file__, "--child", mode, str(model), str(data), str(tmp / f"run-{r}-{mode}"),
                   "--steps", str(steps), "--json", str(out)]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if proc.returncode != 0:
                raise RuntimeError(f"host_memory.py --child {mode} failed:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
            runs[mode].append(json.loads(out.read_text()))
            log(f"round {r} {mode}: {runs[mode][-1]['cpu_s'] * 1e3:.0f} ms CPU a step")
    med = {m: statistics.median(x["cpu_s"] for x in runs[m]) for m in MODES}
    worst = {m: max(x["cpu_s"] for x in runs[m]) for m in MODES}
    return {"runs": runs, "speedup": med["default"] / med["keep"], "worst_speedup": worst["default"] / worst["keep"],
            "peak_rss_ratio": max(x["peak_rss_gb"] for x in runs["keep"]) /
            max(x["peak_rss_gb"] for x in runs["default"])}


def report(result: dict) -> str:
    lines = ["CPU allocator, full-size SD1.5, 64 px, batch 2, U-Net LoRA (one process a run)",
             f"  {'malloc':<8} {'CPU ms a step':>14} {'wall ms':>8} {'sys s':>6} {'faults a step':>14} {'peak RSS':>9}"]
    for mode in MODES:
        for x in result["runs"][mode]:
            lines.append(f"  {mode:<8} {x['cpu_s'] * 1e3:14.0f} {x['wall_s'] * 1e3:8.0f} {x['sys_s']:6.1f} "
                         f"{x['faults_per_step']:14.0f} {x['peak_rss_gb']:7.2f} GB")
    lines.append(f"  speed-up (median process) {result['speedup']:.2f}x, slowest process {result['worst_speedup']:.2f}x,"
                 f" peak RSS keep / default {result['peak_rss_ratio']:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=8, help="steps timed a run (warm-up steps come on top)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument("--child", nargs=4, metavar=("MODE", "MODEL", "DATA", "RUN_DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        mode, model, data, run_dir = args.child
        result = child(mode, Path(model), Path(data), Path(run_dir), args.steps)
    else:
        from bench.engine_overhead import prepare

        tmp = Path(tempfile.mkdtemp(prefix="danlu-host-memory-"))
        model, data = prepare(tmp, "sd15", "full")
        result = measure(model, data, tmp, args.steps, args.rounds)
        print(report(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
