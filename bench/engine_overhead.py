"""Engine overhead: steady-state step time of `trainer.engine` against a bare diffusers + peft loop doing the
same work on the same tiny SD1.5 model and data, and the epoch-2 speed-up from the latent cache.

    python bench/engine_overhead.py [--steps 60] [--rounds 2]

Both loops run in this process, alternating, so outside load hits them alike. Targets: engine/bare <= 1.10.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.engine_helpers import make_dataset, tiny_config  # noqa: E402
from trainer.engine.run import train  # noqa: E402
from trainer.events import read_events  # noqa: E402


def engine_step_times(cfg, run_dir: Path, skip: int) -> list[float]:
    """Seconds between consecutive progress events after `skip` warm-up steps."""
    assert train(cfg, run_dir) == 0
    times = [e["time"] for e in read_events(run_dir)[0] if e["type"] == "progress"]
    return [b - a for a, b in zip(times[skip:], times[skip + 1:], strict=False)]


def bare_step_times(model: Path, data: Path, steps: int, skip: int, batch: int) -> list[float]:
    """The same work written directly: cached latents, LoRA on U-Net + text encoder, AdamW, MSE loss."""
    from diffusers import DDPMScheduler, StableDiffusionPipeline

    from trainer.data.images import fit_to_bucket, load_image, to_tensor
    from trainer.networks.inject import add_lora

    torch.manual_seed(0)
    pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None, requires_safety_checker=False)
    unet, te, tok, vae = pipe.unet, pipe.text_encoder, pipe.tokenizer, pipe.vae
    sched = DDPMScheduler.from_config(pipe.scheduler.config)
    lora = add_lora(unet, [te], dim=4, alpha=2.0)
    opt = torch.optim.AdamW(lora.parameters(), lr=1e-3)
    files = sorted((data / "5_zk").glob("*.png"))
    with torch.no_grad():
        pixels = torch.stack([to_tensor(fit_to_bucket(load_image(f), (64, 64), random_crop=False, rng=None).image)
                              for f in files])
        latents = vae.encode(pixels).latent_dist.mode() * vae.config.scaling_factor
    captions = [f.with_suffix(".txt").read_text() for f in files]
    out = []
    for step in range(steps):
        t0 = time.perf_counter()
        idx = [(step * batch + i) % len(files) for i in range(batch)]
        x0 = latents[idx]
        noise = torch.randn_like(x0)
        t = torch.randint(0, sched.config.num_train_timesteps, (batch,))
        ids = tok([captions[i] for i in idx], padding="max_length", max_length=tok.model_max_length,
                  truncation=True, return_tensors="pt").input_ids
        pred = unet(sched.add_noise(x0, noise, t), t, te(ids)[0]).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lora.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        float(loss)
        out.append(time.perf_counter() - t0)
    return out[skip:]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    from trainer.models.tiny import build_tiny_sd15

    tmp = Path(tempfile.mkdtemp(prefix="danlu-bench-"))
    model = tmp / "model"
    build_tiny_sd15(0, four_level=True).save_pretrained(model)
    data = make_dataset(tmp / "data", n=6)
    skip = 10
    engine, bare = [], []
    for r in range(args.rounds):
        bare += bare_step_times(model, data, args.steps, skip, batch=2)
        cfg = tiny_config(model, data, training__max_train_steps=args.steps, save__save_every_n_epochs=0)
        engine += engine_step_times(cfg, tmp / f"engine{r}", skip)
    e, b = statistics.median(engine), statistics.median(bare)
    print(f"steady-state step: engine {e * 1000:.1f} ms, bare diffusers+peft {b * 1000:.1f} ms, "
          f"ratio engine/bare = {e / b:.3f} (target <= 1.10)")
    # Latent cache: epoch 2 (15 steps an epoch here) with and without cached latents.
    per_epoch = 15
    cached = uncached = []
    for cache in (True, False):
        cfg = tiny_config(model, data, training__max_train_epochs=2, speed__cache_latents=cache,
                          save__save_every_n_epochs=0)
        times = engine_step_times(cfg, tmp / f"cache{cache}", per_epoch)
        if cache:
            cached = times
        else:
            uncached = times
    c, u = statistics.median(cached), statistics.median(uncached)
    print(f"epoch-2 step: cached latents {c * 1000:.1f} ms, encoding every step {u * 1000:.1f} ms, "
          f"speed-up from the latent cache = {u / c:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
