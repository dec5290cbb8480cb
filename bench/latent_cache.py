"""Latent cache: the engine's steady-state step with latents cached (encoded once before training) against the same
run with the VAE encoding every batch.

    python bench/latent_cache.py [--size tiny|full] [--reso 64] [--steps 15] [--json out.json]

The tiny model's VAE encodes a 64 px image in well under a millisecond, so there the cache shows nothing. The
figure that matters is `--size full --reso 512`: SD1.5's real VAE (random weights) at its training resolution,
batch 1, LoRA dim 8 on the U-Net and the text encoder, AdamW, fp32.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine_overhead import SKIP, engine_config, engine_step_times, medians  # noqa: E402
from bench.models import save_model  # noqa: E402
from tests.engine_helpers import make_dataset  # noqa: E402


def measure(model: Path, data: Path, tmp: Path, family: str, size: str, sets: list[str] | None = None,
            reso: int = 64, steps: int = 15) -> dict:
    """Median (wall, CPU) step times with and without the cache, after SKIP[size] warm-up steps each. Above 64 px
    the batch is 1 (a 512 px step of the full-size model takes tens of seconds on a CPU)."""
    extra = {} if reso == 64 else {"dataset__resolution": f"{reso},{reso}", "dataset__min_bucket_reso": reso // 2,
                                   "dataset__max_bucket_reso": reso * 2, "training__train_batch_size": 1}
    out = {"family": family, "size": size, "reso": reso, "steps": steps, "batch": 2 if reso == 64 else 1}
    for cache in (True, False):
        cfg = engine_config(model, data, family, size, sets or [], training__max_train_steps=SKIP[size] + steps + 1,
                            speed__cache_latents=cache, **extra)
        wall, cpu = medians(engine_step_times(cfg, tmp / f"cache-{family}-{size}-{reso}-{cache}", SKIP[size]))
        out["cached" if cache else "uncached"] = {"wall_s": wall, "cpu_s": cpu}
        gc.collect()
    out["speedup"] = out["uncached"]["cpu_s"] / out["cached"]["cpu_s"]
    out["wall_speedup"] = out["uncached"]["wall_s"] / out["cached"]["wall_s"]
    return out


def report(r: dict) -> str:
    return (f"latent cache, {r['size']} {r['family']}, {r['reso']} px, batch {r['batch']}: step with cached latents "
            f"{r['cached']['cpu_s'] * 1e3:.1f} ms CPU, VAE every step {r['uncached']['cpu_s'] * 1e3:.1f} ms: "
            f"speed-up {r['speedup']:.2f}x (wall {r['wall_speedup']:.2f}x)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=("tiny", "full"), default="tiny")
    ap.add_argument("--reso", type=int, default=64, help="training resolution (square images of this size)")
    ap.add_argument("--steps", type=int, default=15, help="steps timed in each run, after the warm-up")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an engine setting (repeatable)")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="danlu-latents-"))
    t0 = time.perf_counter()
    model = save_model(tmp / "model", "sd15", args.size)
    # Three images, one repeat: at 512 px a batch of 1 and an epoch of 3 steps.
    data = make_dataset(tmp / "data", n=6, size=(args.reso, args.reso)) if args.reso == 64 else \
        make_dataset(tmp / "data", n=3, folder="1_zk", size=(args.reso, args.reso))
    result = measure(model, data, tmp, "sd15", args.size, args.set, args.reso, args.steps)
    print(report(result), f"\n({time.perf_counter() - t0:.0f} s in all)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
