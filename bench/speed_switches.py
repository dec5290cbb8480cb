"""Each speed switch measured on this machine: the engine's steady-state step with one switch on, against the same
run without it. Every switch's run sits between two baseline runs (baseline, switch 1, baseline, switch 2, ...,
`rounds` times), so a machine whose speed drifts (other jobs; a VM's neighbours) skews a ratio only by its drift
across three runs; the spread of the baseline runs is the noise to read the ratios against.

    python bench/speed_switches.py [--size tiny|full] [--steps 30] [--rounds 2] [--only NAME ...] [--json out.json]

The switches are those of the "fastest" speed preset (presets/fastest.toml), each at the preset's value, then the
preset as a whole as cut for this machine, then the two caches. Baseline: SD1.5 (tiny, or the full-size
architecture with random weights), 64 px, batch 2, LoRA on the U-Net only (so the text-encoder cache can apply),
AdamW, fp32, latents cached (the default). The latent cache is measured turned off: its row's speed-up below 1 is
what the cache saves. `speedup` = the neighbouring baselines' CPU time a step / the setting's (above 1: faster),
the median over rounds.

Some switches act on CUDA only (pinned memory, cuDNN autotuning, TF32): on a CPU their rows measure the noise.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine_overhead import SKIP, engine_config, engine_step_times, medians, prepare  # noqa: E402

CUDA_ONLY = {"pin_memory": "pinning is for copies to a GPU", "cudnn_benchmark": "cuDNN is NVIDIA's",
             "tf32": "TF32 is a tensor-core format"}
COMPILE_SKIP = 4  # compiled runs leave out this many times the usual warm-up steps: the first ones compile


def settings(compile_blocks: bool = True) -> list[tuple[str, dict]]:
    """(name, speed overlay) for the baseline and each switch: the fastest preset's switches one at a time (its
    loader workers with their persistence, as the preset sets them), the preset as cut for this machine, and the
    caches."""
    from trainer.config.fastest import for_gpu
    from trainer.config.presets import get_preset
    from trainer.engine.speed import detect_gpu

    preset = get_preset("fastest").overlay["speed"]
    out, taken = [("baseline", {})], set()
    for key, value in preset.items():
        if key in taken or (key == "compile_blocks" and not compile_blocks):
            continue
        together = {k: v for k, v in preset.items() if "data_loader" in k} \
            if "data_loader" in key else {key: value}
        taken |= set(together)
        out.append((" + ".join(f"{k}={v}" for k, v in together.items()), together))
    cut = for_gpu({"speed": preset}, detect_gpu())["speed"]
    out.append(("fastest preset, as cut for this machine", cut))
    out += [("cache_text_encoder_outputs=True", {"cache_text_encoder_outputs": True}),
            ("cache_latents=False (cache off)", {"cache_latents": False})]
    return out


def measure(model: Path, data: Path, tmp: Path, size: str, steps: int, rounds: int, only: list[str] | None = None,
            compile_blocks: bool = True, log=print) -> list[dict]:
    """Each switch's run sits between two baseline runs (B S1 B S2 B ... a round): its speed-up is the mean of its
    neighbours' median step times over its own, so a machine that drifts (other jobs, a VM's neighbours) skews a
    ratio only as much as it drifts within three runs. Over rounds, the median speed-up is reported."""
    chosen = [(n, o) for n, o in settings(compile_blocks) if n == "baseline" or not only or any(w in n for w in only)]
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in chosen}  # (wall, CPU) median per run
    ratios: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in chosen}
    warned: dict[str, set[str]] = {name: set() for name, _ in chosen}

    def run(name: str, speed: dict, run_dir: Path) -> tuple[float, float]:
        skip = SKIP[size] * (COMPILE_SKIP if speed.get("compile_blocks") else 1)
        cfg = engine_config(model, data, "sd15", size, [], training__max_train_steps=steps + skip + 1,
                            training__network_train_unet_only=True, **{f"speed__{k}": v for k, v in speed.items()})
        got = medians(engine_step_times(cfg, run_dir, skip))
        warned[name] |= engine_warnings(run_dir)
        runs[name].append(got)
        gc.collect()
        log(f"{run_dir.name} {name}: {got[1] * 1e3:.1f} ms CPU a step")
        return got

    # The first engine run in a process pays one-time costs (kernel and allocator set-up): not counted.
    run("baseline", {}, tmp / f"switch-{size}-warm-up")
    runs["baseline"].clear()
    for r in range(rounds):
        before = run("baseline", {}, tmp / f"switch-{size}-{r}-base-0")
        for i, (name, speed) in enumerate(chosen[1:], 1):
            got = run(name, speed, tmp / f"switch-{size}-{r}-{i}")
            after = run("baseline", {}, tmp / f"switch-{size}-{r}-base-{i}")
            ratios[name].append(tuple((b + a) / 2 / g for b, a, g in zip(before, after, got, strict=True)))
            before = after
    base = [c for _, c in runs["baseline"]]
    ratios["baseline"] = [(1.0, 1.0)]
    return [{"setting": name, "speed": speed, "cpu_s": statistics.median(c for _, c in runs[name]),
             "wall_s": statistics.median(w for w, _ in runs[name]), "runs_cpu_s": [c for _, c in runs[name]],
             "speedup": statistics.median(c for _, c in ratios[name]),
             "wall_speedup": statistics.median(w for w, _ in ratios[name]),
             "note": "; ".join([f"CUDA only ({why}): the noise here" for k, why in CUDA_ONLY.items() if k in speed]
                               + sorted(f"the engine warned: {w}" for w in warned[name] - warned["baseline"])
                               + ([f"baseline runs {min(base) * 1e3:.0f}-{max(base) * 1e3:.0f} ms: spread "
                                   f"{max(base) / min(base):.3f}"] if name == "baseline" else []))}
            for name, speed in chosen]


def engine_warnings(run_dir: Path) -> set[str]:
    """The run's warnings (train.log), which say when a switch does nothing on this machine (bf16 on a CPU)."""
    lines = (run_dir / "train.log").read_text(encoding="utf-8").splitlines()
    return {line.split(" WARNING ", 1)[1].split(" (hint:")[0] for line in lines if " WARNING " in line}


def report(rows: list[dict], size: str) -> str:
    lines = [f"speed switches, {size} SD1.5, 64 px, batch 2, U-Net LoRA (CPU ms a step; speed-up over the baseline)"]
    for r in rows:
        spread = "/".join(f"{x * 1e3:.0f}" for x in r["runs_cpu_s"])
        lines.append(f"  {r['setting']:<48} {r['cpu_s'] * 1e3:9.1f} ms  {r['speedup']:.3f}x (wall {r['wall_speedup']:.3f}x)"
                     f"  runs {spread}  {r['note']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=("tiny", "full"), default="tiny")
    ap.add_argument("--steps", type=int, default=30, help="steps timed per run (warm-up steps come on top)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", nargs="+", help="settings whose name contains one of these words (and the baseline)")
    ap.add_argument("--no-compile", action="store_true", help="leave out compile_blocks (it compiles for minutes)")
    ap.add_argument("--json", type=Path, help="also write the rows to this file")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="danlu-switches-"))
    t0 = time.perf_counter()
    model, data = prepare(tmp, "sd15", args.size)
    rows = measure(model, data, tmp, args.size, args.steps, args.rounds, args.only, not args.no_compile)
    print(report(rows, args.size), f"\n({time.perf_counter() - t0:.0f} s in all)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
