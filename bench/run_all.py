"""Danlu's benchmark suite: one table of times and ratios.

    python bench/run_all.py --quick          # small sizes, a few minutes on a 2-core CPU
    python bench/run_all.py                  # full CPU mode (tiny + full-size engine, 10,000 images, ...)
    python bench/run_all.py --gpu            # CUDA only: bench/gpu_speed.py (it/s, peak VRAM, sd-scripts figures)
    python bench/run_all.py --quick --set speed.some_switch=true --json out.json --only engine_tiny scan

Times are CPU seconds where the section measures inside this process (other jobs on a shared machine skew
wall time far more) and wall seconds for whole processes (app start, Start to first step). A section that
fails shows its error in the table and makes the exit status 1; a target missed is shown, not an error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@dataclass
class Row:
    section: str
    measurement: str
    value: str
    target: str = ""
    ok: bool | None = None  # None: no target


# Sizes per mode. "smoke" is the CI test's: seconds in all; it runs the cheapest sections (IN_MODE), its other
# sizes serve `--smoke --only <section>`.
SIZES = {
    "smoke": {"steps": 12, "rounds": 1, "switches": ["fused_optimizer"], "scan": 40, "captions": 60, "tagger": dict(images=4, rounds=1, batch=2, dim=32,
                                                                                  depth=1, heads=2, tags=50)},
    "quick": {"steps": 15, "rounds": 1, "scan": 500, "captions": 1000, "tagger": dict(images=8, rounds=2, batch=4,
                                                                                     dim=192, depth=2, heads=4, tags=500)},
    "full": {"steps": 40, "rounds": 2, "full_steps": 8, "full_rounds": 1, "scan": 10_000, "captions": 10_000,
             "tagger": dict(images=48, rounds=2, batch=8)},
}


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def check(value: float, limit: float, above: bool = False) -> bool:
    return value >= limit if above else value <= limit


# ---- sections: each returns rows --------------------------------------------------------------------
def engine_rows(result: dict, label: str) -> list[Row]:
    from bench.engine_overhead import TARGET

    c = result["cpu"]
    return [Row(label, "engine step (CPU)", ms(c["engine_s"])),
            Row(label, "bare diffusers+peft step (CPU)", ms(c["bare_s"])),
            Row(label, "floor: U-Net fwd+bwd, no adapter (CPU)", ms(c["floor_s"])),
            Row(label, "floor + text encoder fwd+bwd (CPU)", ms(c["floor_te_s"])),
            Row(label, "engine / bare", f"{c['engine_over_bare']:.3f}", f"<= {TARGET}",
                check(c["engine_over_bare"], TARGET)),
            Row(label, "engine / floor", f"{c['engine_over_floor']:.2f}"),
            Row(label, "engine / (floor + TE)", f"{c['engine_over_floor_te']:.2f}"),
            Row(label, "engine / bare, wall clock", f"{result['wall']['engine_over_bare']:.3f}")]


def engine_tiny(mode: str, tmp: Path, sets: list[str]) -> list[Row]:
    from bench.engine_overhead import measure_overhead, prepare

    size = SIZES[mode]
    model, data = prepare(tmp, "sd15", "tiny")
    return engine_rows(measure_overhead(model, data, tmp, "sd15", "tiny", size["steps"], size["rounds"], sets,
                                        log=lambda _: None), "engine, tiny SD1.5")


def script_json(script: str, args: list[str], out: Path) -> dict:
    """Run bench/<script> in its own process (a full-size model's memory is returned after) and read its --json."""
    cmd = [sys.executable, str(ROOT / "bench" / script), *args, "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return json.loads(out.read_text())


def engine_full(mode: str, tmp: Path, sets: list[str]) -> list[Row]:
    """Full-size SD1.5 (random weights, 64 px, batch 2) in its own process, so its ~5 GB are returned after."""
    args = ["--size", "full", "--no-cache", "--steps", str(SIZES[mode]["full_steps"]),
            "--rounds", str(SIZES[mode]["full_rounds"])] + [x for s in sets for x in ("--set", s)]
    return engine_rows(script_json("engine_overhead.py", args, tmp / "engine_full.json"), "engine, full-size SD1.5")


def latent_cache(mode: str, tmp: Path, sets: list[str]) -> list[Row]:
    from bench.engine_overhead import prepare
    from bench.latent_cache import measure

    model, data = prepare(tmp, "sd15", "tiny")
    return latent_rows(measure(model, data, tmp, "sd15", "tiny", sets, steps=SIZES[mode]["steps"]),
                       "latent cache, tiny SD1.5, 64 px")


def latent_cache_full(mode: str, tmp: Path, sets: list[str]) -> list[Row]:
    """SD1.5's real VAE at 512 px (full-size model, batch 1), in its own process (about 10 GB)."""
    args = ["--size", "full", "--reso", "512", "--steps", "2"] + [x for s in sets for x in ("--set", s)]
    return latent_rows(script_json("latent_cache.py", args, tmp / "latent_cache_full.json"),
                       "latent cache, full-size SD1.5, 512 px")


def host_memory(mode: str, tmp: Path, sets: list[str]) -> list[Row]:
    """The engine's CPU allocator setting on and off, full-size SD1.5, a fresh process a run (bench/host_memory.py)."""
    if sets:
        raise ValueError("host_memory measures the engine's defaults: run it without --set")
    r = script_json("host_memory.py", ["--steps", str(SIZES[mode]["full_steps"]), "--rounds", "2"],
                    tmp / "host_memory.json")
    label = "CPU allocator, full-size SD1.5"
    steps = {m: "/".join(f"{x['cpu_s'] * 1e3:.0f}" for x in r["runs"][m]) for m in r["runs"]}
    return [Row(label, "glibc default: CPU ms a step, each process", steps["default"]),
            Row(label, "freed blocks kept: CPU ms a step, each process", steps["keep"]),
            Row(label, "speed-up, median / slowest process", f"{r['speedup']:.2f}x / {r['worst_speedup']:.2f}x"),
            Row(label, "peak RSS, kept / default", f"{r['peak_rss_ratio']:.3f}")]


def latent_rows(r: dict, label: str) -> list[Row]:
    return [Row(label, "step, latents cached (CPU)", ms(r["cached"]["cpu_s"])),
            Row(label, "step, VAE every step (CPU)", ms(r["uncached"]["cpu_s"])),
            Row(label, "speed-up", f"{r['speedup']:.2f}x")]


def switch_rows(rows: list[dict], label: str) -> list[Row]:
    """A row a setting; a note (CUDA only, or what the engine warned about the switch) cut to a table cell."""
    def note(text: str) -> str:
        text = "CUDA only: noise here" if text.startswith("CUDA only") else text
        return f" ({text[:60]}...)" if len(text) > 60 else f" ({text})" if text else ""

    return [Row(label, r["setting"] + note(r["note"]), f"{r['speedup']:.3f}x ({ms(r['cpu_s'])})") for r in rows]


def switches(mode: str, tmp: Path, sets: list[str]) -> list[Row]:
    """Each speed switch alone on the tiny SD1.5 against the baseline (bench/speed_switches.py)."""
    from bench.engine_overhead import prepare
    from bench.speed_switches import measure

    model, data = prepare(tmp, "sd15", "tiny")
    size = SIZES[mode]
    rows = measure(model, data, tmp, "tiny", size["steps"], size["rounds"], compile_blocks=mode == "full",
                   only=size.get("switches"), log=lambda _: None)
    return switch_rows(rows, "speed switches, tiny SD1.5 (speed-up)")


def switches_full(mode: str, tmp: Path, sets: list[str]) -> list[Row]:
    """The same on full-size SD1.5, in its own process (its ~4 GB are returned after)."""
    args = ["--size", "full", "--steps", str(SIZES[mode]["full_steps"]), "--rounds", str(SIZES[mode]["full_rounds"] + 1)]
    return switch_rows(script_json("speed_switches.py", args, tmp / "switches_full.json"),
                       "speed switches, full-size SD1.5 (speed-up)")


def scan(mode: str, tmp: Path, sets: list[str]) -> list[Row]:
    from bench.dataset_scan import run

    n = SIZES[mode]["scan"]
    r = run(n)
    label = f"dataset scan, {n} images"
    return [Row(label, "headers + buckets (CPU)", f"{r['headers_cpu_s']:.2f} s"),
            Row(label, "decode every image + buckets (CPU)", f"{r['decode_cpu_s']:.2f} s"),
            Row(label, "speed-up of the header scan", f"{r['speedup']:.1f}x", ">= 5x", check(r["speedup"], 5, True))]


def tagger(mode: str, tmp: Path, sets: list[str]) -> list[Row]:
    from bench.tagger_throughput import measure

    t = SIZES[mode]["tagger"]
    r = measure(**t, log=lambda _: None)
    label = f"tagger, ViT {t.get('dim', 768)}x{t.get('depth', 12)}, {t['images']} images"
    full = mode == "full"  # small models are decode-bound: the ratio target is for a real tagger's size
    return [Row(label, "bare onnxruntime", f"{r['bare_images_s']:.2f} images/s"),
            Row(label, "pipeline (decode + preprocess + run)", f"{r['pipeline_images_s']:.2f} images/s"),
            Row(label, "pipeline / bare", f"{r['ratio']:.3f}", ">= 0.9" if full else "",
                check(r["ratio"], 0.9, True) if full else None)]


def tag_editor(mode: str, tmp: Path, sets: list[str]) -> list[Row]:
    from bench import tag_editor as te

    n = SIZES[mode]["captions"]
    root = tmp / "captions"
    te.generate(root, n, 30)
    fig = te.run(root, tmp / "tag-editor")
    label = f"tag editor, {n} captions"
    bulk = max(w for k, (w, _) in fig.times.items() if k.startswith("bulk_") and not k.endswith("_preview"))
    return [Row(label, "load + frequency table", f"{fig.wall('load_and_frequency'):.2f} s",
                f"< {te.TARGETS['load_and_frequency']} s", fig.wall("load_and_frequency") < te.TARGETS["load_and_frequency"]),
            Row(label, "slowest bulk operation", f"{bulk:.3f} s", f"< {te.TARGETS['bulk_max']} s",
                bulk < te.TARGETS["bulk_max"]),
            Row(label, "gallery page (thumbnails cached)", f"{fig.wall('gallery_page_cached'):.3f} s",
                f"< {te.TARGETS['gallery_page_cached']} s",
                fig.wall("gallery_page_cached") < te.TARGETS["gallery_page_cached"])]


def startup(mode: str, tmp: Path, sets: list[str]) -> list[Row]:
    from bench.startup import app_start, start_to_first_step

    ws = tmp / "workspace"
    ws.mkdir(exist_ok=True)
    rows = [Row("first use", "app start to page answering (wall)", f"{app_start(ws):.1f} s"),
            Row("first use", "Start to first step, demo model built (wall)", f"{start_to_first_step(ws):.1f} s")]
    if mode == "full":
        rows.append(Row("first use", "Start to first step, demo model exists (wall)",
                        f"{start_to_first_step(ws):.1f} s"))
    return rows


def page(mode: str, tmp: Path, sets: list[str]) -> list[Row]:
    """Browser and app CPU while a run trains, the page on a tab without a monitor vs no run (bench/page_cpu.py)."""
    from bench.page_cpu import TARGET, measure

    r = measure(15.0, log=lambda _: None)
    label = "open page, run at 4 it/s"

    def pct(state: str) -> str:
        return f"{r[state]['browser']:.0f}% / {r[state]['app']:.0f}%"

    return [Row(label, "browser / app CPU, Dataset tab, no run", pct("idle")),
            Row(label, "browser / app CPU, Dataset tab, monitors drawn", pct("hidden")),
            Row(label, "browser / app CPU, Novice tab watching", pct("watching")),
            Row(label, "browser / app CPU, Novice tab, run ended", pct("ended")),
            Row(label, "browser CPU, Dataset: run / no run", f"{r['hidden_over_idle']:.2f}", f"<= {TARGET}",
                check(r["hidden_over_idle"], TARGET))]


def load_memory(mode: str, tmp: Path, sets: list[str]) -> list[Row]:
    """Full-size only: a tiny model's weights (a few MB) are dwarfed by the code the loader imports on first use."""
    from bench.load_memory import TARGET, measure

    rows = []
    for dtype in ("fp32", "fp16"):
        r = measure("full", tmp, dtype)
        label = f"single-file load, full-size SD1.5, {dtype} file"
        rows += [Row(label, "file / weights loaded (fp32)", f"{r['file_gb']:.2f} / {r['state_gb']:.2f} GB"),
                 Row(label, "peak RSS growth (mapped file pages too)", f"{r['rss_peak_growth_gb']:.2f} GB"),
                 Row(label, "peak anonymous memory growth", f"{r['anon_growth_gb']:.2f} GB"),
                 Row(label, "peak RSS growth / weights", f"{r['ratio']:.2f}", f"<= {TARGET[dtype]}",
                     check(r["ratio"], TARGET[dtype]))]
        (tmp / f"sd15-full-{dtype}.safetensors").unlink(missing_ok=True)  # 2-4 GB
    return rows


SECTIONS = {"engine_tiny": engine_tiny, "engine_full": engine_full, "latent_cache": latent_cache,
            "latent_cache_full": latent_cache_full, "host_memory": host_memory,
            "switches": switches, "switches_full": switches_full, "scan": scan, "tagger": tagger,
            "tag_editor": tag_editor, "startup": startup, "page": page, "load_memory": load_memory}
IN_MODE = {"smoke": ["scan", "tag_editor"],
           "quick": ["engine_tiny", "scan", "tagger", "tag_editor", "startup"],
           "full": list(SECTIONS)}


# ---- the table ---------------------------------------------------------------------------------------
def machine() -> str:
    import torch

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), load average {load}")


def table(rows: list[Row]) -> str:
    """The rows as one aligned text table; the status column says OK / MISS against the target, or ERROR."""
    head = ("section", "measurement", "value", "target", "")
    cells = [head] + [(r.section, r.measurement, r.value, r.target,
                       "" if r.ok is None else "OK" if r.ok else "MISS") for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(head))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_sections(names: list[str], mode: str, sets: list[str]) -> tuple[list[Row], bool]:
    rows, failed = [], False
    with tempfile.TemporaryDirectory(prefix="danlu-runall-") as tmp:
        for name in names:
            t0 = time.perf_counter()
            print(f"[bench] {name} ...", flush=True)
            try:
                rows += SECTIONS[name](mode, Path(tmp), sets)
            except Exception as exc:  # one broken section must not hide the others' figures
                failed = True
                print(traceback.format_exc(), flush=True)
                rows.append(Row(name, "ERROR", f"{type(exc).__name__}: {exc}"[:120], "", False))
            print(f"[bench] {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    return rows, failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="small sizes (under 3 minutes on a 2-core CPU)")
    group.add_argument("--smoke", action="store_true", help="the CI test's tiny sizes: checks the suite runs")
    group.add_argument("--gpu", action="store_true", help="GPU speed and memory (needs CUDA): bench/gpu_speed.py")
    ap.add_argument("--only", nargs="+", choices=list(SECTIONS), help="run these sections only")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="engine setting for the engine sections, e.g. a speed switch (repeatable)")
    ap.add_argument("--json", type=Path, help="also write the rows to this file")
    args, rest = ap.parse_known_args(argv)
    if args.gpu:
        from bench.gpu_speed import main as gpu_main

        return gpu_main(rest + [x for s in args.set for x in ("--set", s)])
    if rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    t0 = time.perf_counter()
    before = machine()
    rows, failed = run_sections(args.only or IN_MODE[mode], mode, args.set)
    print(f"\nDanlu bench, {mode} mode, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{time.perf_counter() - t0:.0f} s" + (f", engine settings {' '.join(args.set)}" if args.set else ""))
    print(f"machine: {before}; at the end: load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"mode": mode, "machine": before, "sets": args.set,
                                         "rows": [asdict(r) for r in rows]}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
