"""Measure peak GPU memory and speed of real-size SD1.5 LoRA training per memory preset, beside the estimate.

Builds a full-size SD1.5 architecture with random weights (assets/model_configs/sd15; no download), a
512 px dataset, then trains a few steps per preset with `python -m trainer train` in a fresh process each,
and prints measured peak memory (torch.cuda.max_memory_allocated) next to trainer.memory.estimate_memory.

    python bench/gpu_memory.py [--out results.json] [--steps 8] [--tiny]   # --tiny: CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VARIANTS = {  # name -> (presets, overrides)
    "6gb": (["novice-character", "memory-6gb"], {"optimizer": {"optimizer_type": "AdamW"}}),
    "8gb": (["novice-character", "memory-8gb"], {"optimizer": {"optimizer_type": "AdamW"}}),
    "12gb": (["novice-character", "memory-12gb"], {"optimizer": {"optimizer_type": "AdamW"}}),
    "24gb": (["novice-character", "memory-24gb"], {}),
    "fp32-bs1": (["novice-character"], {"speed": {"mixed_precision": "no"}, "training": {"train_batch_size": 1},
                                        "optimizer": {"optimizer_type": "AdamW"}}),
}


def build_model(out: Path, tiny: bool) -> Path:
    import torch

    from bench.models import save_model

    return save_model(out, "sd15", "tiny" if tiny else "full", device="cuda", dtype=torch.float16)


def build_data(root: Path, size: int) -> Path:
    from PIL import Image, ImageDraw

    sub = root / "10_sq"
    sub.mkdir(parents=True, exist_ok=True)
    for i in range(8):
        img = Image.new("RGB", (size, size), (30 * i, 200 - 20 * i, 90))
        ImageDraw.Draw(img).rectangle((size // 8, size // 8, size // 2 + 8 * i, size // 2), fill=(250, 40, 40))
        img.save(sub / f"{i}.png")
        (sub / f"{i}.txt").write_text("sq, red square", encoding="utf-8")
    return root


def run_variant(name: str, model: Path, data: Path, work: Path, steps: int, tiny: bool) -> dict:
    from trainer.config import apply_overlay, save_config
    from trainer.config.presets import apply_presets
    from trainer.events import read_events
    from trainer.memory.estimate import estimate_memory

    presets, overrides = VARIANTS[name]
    cfg = apply_overlay(apply_presets(presets), overrides)
    reso = "64,64" if tiny else "512,512"
    cfg = apply_overlay(cfg, {
        "model": {"base_model": str(model)},
        "dataset": {"train_data_dir": str(data), "resolution": reso, "min_bucket_reso": 64 if tiny else 256},
        "training": {"max_train_steps": steps},
        "save": {"save_every_n_epochs": 0, "output_name": name},
        "sampling": {"sample_prompts": "sq, red square" if name == "6gb" else "", "sample_every_n_steps":
                     steps if name == "6gb" else 0, "sample_steps": 4, "sample_width": 64 if tiny else 512,
                     "sample_height": 64 if tiny else 512},
    })
    run_dir = work / "runs" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.toml")
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "trainer", "train", "--config", str(run_dir / "config.toml"),
                           "--run-dir", str(run_dir)], cwd=ROOT, capture_output=True, text=True)
    events = read_events(run_dir)[0]
    progress = [e for e in events if e["type"] == "progress"]
    vram = [e.get("vram_gb") or 0.0 for e in progress]
    est = estimate_memory(cfg)
    return {
        "variant": name, "rc": proc.returncode, "seconds": round(time.time() - t0, 1),
        "batch": cfg.training.train_batch_size, "mixed": cfg.speed.mixed_precision,
        "checkpointing": cfg.training.gradient_checkpointing, "optimizer": cfg.optimizer.optimizer_type,
        "peak_gb": round(max(vram), 2) if vram else None, "estimate_gb": est.total_gb, "estimate_parts": est.parts,
        "it_s": progress[-1].get("it_s") if progress else None,
        "samples": sum(e["type"] == "sample" for e in events),
        "end": events[-1] if events else None, "stderr_tail": proc.stdout[-1500:] + proc.stderr[-1500:],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="gpu_memory.json")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--work", default="/tmp/danlu-gpu-bench")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--only", nargs="*", default=list(VARIANTS))
    args = ap.parse_args()
    work = Path(args.work)
    t0 = time.time()
    model = build_model(work / "model", args.tiny)
    data = build_data(work / "data", 64 if args.tiny else 512)
    print(f"model and data ready in {time.time() - t0:.0f}s", flush=True)
    results = []
    for name in args.only:
        r = run_variant(name, model, data, work, args.steps, args.tiny)
        results.append(r)
        Path(args.out).write_text(json.dumps(results, indent=1))
        ratio = r["peak_gb"] / r["estimate_gb"] if r["peak_gb"] else float("nan")
        print(f"{name:10s} rc={r['rc']} batch={r['batch']} {r['mixed']:4s} ckpt={r['checkpointing']!s:5s} "
              f"peak={r['peak_gb']} GB estimate={r['estimate_gb']} GB measured/estimate={ratio:.2f} "
              f"it/s={r['it_s']} samples={r['samples']} end={r['end'] and r['end']['type']}", flush=True)
        if r["rc"] != 0:
            print(r["stderr_tail"], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
