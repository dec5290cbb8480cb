"""GPU speed and memory: it/s and peak VRAM of real-size LoRA training per speed setting, beside Danlu's
memory estimate and the figures people quote for sd-scripts. Needs CUDA; refuses clearly without it.

    python bench/gpu_speed.py [--only sd15-512-bs1 sd15-512-bs4 sdxl-1024-bs1] [--presets] [--flux]
                              [--set speed.xxx=VALUE ...] [--json out.json]
    python bench/run_all.py --gpu ...        # the same

Models are the real architectures with random weights (bench/models.py; nothing is downloaded): speed and
memory depend on shapes, not values. Every run: LoRA dim 32 / alpha 16 on the U-Net, text-encoder outputs
and latents cached (sd-scripts' usual fast recipe), AdamW, constant lr. The settings add up, in order:
bf16 + SDPA, + gradient checkpointing, + 8-bit AdamW (bitsandbytes), + torch.compile (when the `speed`
group offers a compile switch). `--presets` also trains SD1.5 512 px under each memory preset and prints the
peak beside trainer.memory's estimate (bench/gpu_memory.py).
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
PRESETS_DIR = ROOT / "presets"

# (family, resolution, batch, steps timed after warm-up)
CASES = {"sd15-512-bs1": ("sd15", 512, 1, 30), "sd15-512-bs4": ("sd15", 512, 4, 20),
         "sdxl-1024-bs1": ("sdxl", 1024, 1, 15), "flux-1024-bs1": ("flux", 1024, 1, 10)}
COMPILED = ("sd15-512-bs1", "sdxl-1024-bs1")  # the cases also run with compilation (it costs minutes a run)
WARMUP = 5  # steps left out: allocator growth, cuDNN autotuning (compile gets more, below)
# What people report for sd-scripts at the same settings ("community figures": forum and issue reports, not
# a controlled measurement; different GPUs, drivers and versions). Only figures we have a source for.
COMMUNITY = {"sdxl-1024-bs1": "sd-scripts: about 1.1-1.2 s/it (0.8-0.9 it/s) on an RTX 3090 Ti / 4090, "
                              "community figures"}


def compile_switch() -> str | None:
    """The speed group's torch.compile switch (its name is read from the schema), if it has one."""
    from trainer.config.schema import params_by_path

    found = [p for p, info in params_by_path().items()
             if p.startswith("speed.") and "compile" in p and info.kind == "bool"]
    return found[0] if found else None


def variants(case: str, with_compile: bool) -> list[tuple[str, dict, list[str], list[str]]]:
    """(name, overlay, --set items, presets) for each setting, each adding to the one before; then the
    "fastest" speed preset (as cut for this GPU) over the first setting."""
    steps = [("bf16+sdpa", {"speed": {"mixed_precision": "bf16", "sdpa": True}}, []),
             ("+grad checkpointing", {"training": {"gradient_checkpointing": True}}, []),
             ("+8-bit AdamW", {"optimizer": {"optimizer_type": "AdamW8bit"}}, [])]
    switch = compile_switch()
    if switch and with_compile and case in COMPILED:
        steps.append(("+compile", {}, [f"{switch}=true"]))
    out, overlay, sets = [], {}, []
    for name, extra, more in steps:
        overlay = _merge(overlay, extra)
        sets = sets + more
        out.append((name, overlay, sets, []))
    if with_compile and case in COMPILED and PRESETS_DIR.joinpath("fastest.toml").exists():
        out.append(("fastest preset", steps[0][1], [], ["fastest"]))
    return out


def _merge(a: dict, b: dict) -> dict:
    out = {k: dict(v) for k, v in a.items()}
    for group, values in b.items():
        out.setdefault(group, {}).update(values)
    return out


def make_data(root: Path, size: int) -> Path:
    """Eight size x size images (bench/gpu_memory.py's), a folder per size so each case trains on its own size."""
    from bench.gpu_memory import build_data

    data = root / f"{size}px"
    return data if data.is_dir() else build_data(data, size)


def base_config(family: str, model: Path, data: Path, reso: int, batch: int, steps: int):
    from trainer.config import config_from_dict

    return config_from_dict({
        "model": {"base_model": str(model), "family": family},
        "dataset": {"train_data_dir": str(data), "resolution": f"{reso},{reso}", "min_bucket_reso": 256,
                    "max_bucket_reso": max(1024, reso)},
        "training": {"max_train_steps": steps, "train_batch_size": batch, "seed": 1,
                     "network_train_unet_only": True},
        "optimizer": {"optimizer_type": "AdamW", "learning_rate": 1e-4, "lr_scheduler": "constant"},
        "network": {"network_dim": 32, "network_alpha": 16.0},
        "speed": {"cache_latents": True, "cache_text_encoder_outputs": True},
        "save": {"output_name": "bench", "save_every_n_epochs": 0},
    })


def run_one(cfg, run_dir: Path, warmup: int) -> dict:
    """Train `cfg` in this process; it/s over the steps after `warmup`, and the peak VRAM the engine reported."""
    import torch

    from trainer.engine.run import train
    from trainer.events import read_events
    from trainer.memory.estimate import estimate_memory

    gc.collect()
    if torch.cuda.is_available():  # else the --tiny-cpu smoke run
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    rc = train(cfg, run_dir)
    events = read_events(run_dir)[0]
    progress = [e for e in events if e["type"] == "progress"]
    times = [e["time"] for e in progress][warmup:]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    error = next((e for e in events if e["type"] == "error"), None)
    return {"rc": rc, "seconds": round(time.perf_counter() - t0, 1),
            "it_s": 1 / statistics.median(gaps) if gaps else None,
            "peak_gb": max((e.get("vram_gb") or 0.0) for e in progress) if progress else None,
            "estimate_gb": estimate_memory(cfg).total_gb, "error": error and f"{error['message']} {error['hint']}"}


def build_models(work: Path, families: set[str], tiny: bool = False) -> dict[str, Path]:
    import torch

    from bench.models import save_model

    out = {}
    for family in sorted(families):
        t0 = time.perf_counter()
        dtype = torch.bfloat16 if family == "flux" else torch.float16
        out[family] = save_model(work / f"model-{family}", family, "tiny" if tiny else "full",
                                 device="cpu" if tiny else "cuda", dtype=dtype)
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
        print(f"[gpu] {family} model built and saved in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def speed_table(cases: list[str], work: Path, sets: list[str], log=print, tiny: bool = False,
                with_compile: bool = True, out: Path | None = None) -> list[dict]:
    """Every case without compilation first, then the compiled settings (so no compiled code is reused by a
    plain run); the rows are written to `out` after each run, so a run cut short keeps what it measured."""
    models = build_models(work, {CASES[c][0] for c in cases}, tiny)
    plan = [(case, v) for case in cases for v in variants(case, with_compile) if not (v[2] or v[3])]
    plan += [(case, v) for case in cases for v in variants(case, with_compile) if v[2] or v[3]]
    rows = []
    for case, (name, overlay, more, presets) in plan:
        family, reso, batch, steps = CASES[case]
        if tiny:  # the CPU smoke run: the tiny models at 64 px, a few steps
            reso, steps = 64, 3
        warmup = WARMUP * (4 if more or presets else 1)  # compiling takes the first steps
        cfg = run_config(family, models[family], make_data(work / "data", reso), reso, batch, steps + warmup,
                         overlay, more + sets, presets)
        r = {"case": case, "setting": name, **run_one(cfg, work / "runs" / f"{case}-{len(rows)}", warmup)}
        rows.append(r)
        log(f"[gpu] {case:14s} {name:22s} rc={r['rc']} it/s={_f(r['it_s'])} peak={_f(r['peak_gb'])} GB "
            f"estimate={_f(r['estimate_gb'])} GB ({r['seconds']} s){'  ' + r['error'] if r['error'] else ''}",
            flush=True)
        if out:
            out.write_text(json.dumps({"speed": rows}, indent=1, default=str))
    return rows


def run_config(family, model, data, reso, batch, steps, overlay, sets, presets):
    from trainer.config import apply_overlay
    from trainer.config.overlay import apply_sets
    from trainer.config.presets import apply_presets

    cfg = base_config(family, model, data, reso, batch, steps)
    cfg = apply_presets(presets, base=cfg) if presets else cfg
    return apply_sets(apply_overlay(cfg, overlay), sets)


def preset_table(work: Path, log=print) -> list[dict]:
    """Peak VRAM beside the estimate for each SD1.5 memory preset (bench/gpu_memory.py's runs)."""
    from bench.gpu_memory import VARIANTS, build_data, build_model, run_variant

    model, data = build_model(work / "model-presets", False), build_data(work / "data-presets", 512)
    rows = []
    for name in VARIANTS:
        r = run_variant(name, model, data, work, 8, False)
        rows.append(r)
        log(f"[gpu] preset {name:9s} rc={r['rc']} peak={r['peak_gb']} GB estimate={r['estimate_gb']} GB "
            f"it/s={_f(r['it_s'])}", flush=True)
    return rows


def _f(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def print_tables(speed: list[dict], presets: list[dict]) -> None:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU (the --tiny-cpu smoke run)"
    print(f"\nGPU: {device}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"{'case':14s} {'setting':22s} {'it/s':>7s} {'s/it':>7s} {'peak GB':>8s} {'est. GB':>8s}  sd-scripts")
    for r in speed:
        s_it = 1 / r["it_s"] if r["it_s"] else None
        print(f"{r['case']:14s} {r['setting']:22s} {_f(r['it_s']):>7s} {_f(s_it):>7s} {_f(r['peak_gb']):>8s} "
              f"{_f(r['estimate_gb']):>8s}  {COMMUNITY.get(r['case'], '') if r['setting'] == 'bf16+sdpa' else ''}"
              + (f"  FAILED: {r['error']}" if r["rc"] else ""))
    if presets:
        print(f"\n{'memory preset':14s} {'peak GB':>8s} {'est. GB':>8s} {'peak/est':>8s} {'it/s':>7s}")
        for r in presets:
            ratio = r["peak_gb"] / r["estimate_gb"] if r["peak_gb"] else None
            print(f"{r['variant']:14s} {_f(r['peak_gb']):>8s} {_f(r['estimate_gb']):>8s} {_f(ratio):>8s} "
                  f"{_f(r['it_s']):>7s}")
    if not compile_switch():
        print("\n+compile: not measured: the speed group has no torch.compile switch.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=list(CASES), default=["sd15-512-bs1", "sd15-512-bs4", "sdxl-1024-bs1"])
    ap.add_argument("--presets", action="store_true", help="also each SD1.5 memory preset: peak VRAM vs estimate")
    ap.add_argument("--no-compile", action="store_true", help="leave out +compile and the fastest preset")
    ap.add_argument("--flux", action="store_true", help="also Flux 1024 px (builds a 12B model: ~24 GB of disk)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="engine setting for every run")
    ap.add_argument("--work", type=Path, help="folder for models and runs (default: a temporary one)")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument("--tiny-cpu", action="store_true", help=argparse.SUPPRESS)  # checks this script on a CPU
    args = ap.parse_args(argv)
    import torch

    if not torch.cuda.is_available() and not args.tiny_cpu:
        print("bench --gpu needs an NVIDIA GPU with CUDA, and torch sees none here "
              f"(torch {torch.__version__}). Run it on a GPU machine with a CUDA build of torch; "
              "the CPU benchmarks are `python bench/run_all.py --quick` and `python bench/run_all.py`.",
              file=sys.stderr)
        return 2
    cases = args.only + (["flux-1024-bs1"] if args.flux and "flux-1024-bs1" not in args.only else [])
    with tempfile.TemporaryDirectory(prefix="danlu-gpubench-") as tmp:
        work = args.work or Path(tmp)
        speed = speed_table(cases, work, args.set, tiny=args.tiny_cpu, with_compile=not args.no_compile,
                            out=args.json)
        presets = preset_table(work) if args.presets else []
    print_tables(speed, presets)
    if args.json:
        args.json.write_text(json.dumps({"speed": speed, "presets": presets}, indent=1, default=str))
    return 0 if all(r["rc"] == 0 for r in speed) else 1


if __name__ == "__main__":
    sys.exit(main())
