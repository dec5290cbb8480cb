"""Engine overhead: steady-state step time of `trainer.engine` against a bare diffusers + peft loop doing the
same work on the same tiny model and data, and the epoch-2 speed-up from the latent cache.

    python bench/engine_overhead.py [--family sd15|sdxl] [--steps 60] [--rounds 2]

SDXL mode: the tiny SDXL in SDXL's U-Net layout; the bare loop conditions on both text encoders (penultimate
layers joined), the pooled output of encoder 2 and the size/crop time ids, as the engine does.

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


def encode_dataset(vae, data: Path):
    """Latents (64 px, centre crop) and captions of the bench dataset, encoded once, as the latent cache does."""
    from trainer.data.images import fit_to_bucket, load_image, to_tensor

    files = sorted((data / "5_zk").glob("*.png"))
    with torch.no_grad():
        pixels = torch.stack([to_tensor(fit_to_bucket(load_image(f), (64, 64), random_crop=False, rng=None).image)
                              for f in files])
        latents = vae.encode(pixels).latent_dist.mode() * vae.config.scaling_factor
    return latents, [f.with_suffix(".txt").read_text() for f in files]


def draw(step: int, batch: int, latents, sched):
    """This step's images (in turn), noise and timesteps."""
    idx = [(step * batch + i) % len(latents) for i in range(batch)]
    x0 = latents[idx]
    return idx, x0, torch.randn_like(x0), torch.randint(0, sched.config.num_train_timesteps, (batch,))


def apply_step(loss, lora, opt) -> None:
    loss.backward()
    torch.nn.utils.clip_grad_norm_(lora.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    float(loss)  # wait for the step, as the engine's progress report does


def bare_step_times(model: Path, data: Path, steps: int, skip: int, batch: int) -> list[float]:
    """The same work written directly: cached latents, LoRA on U-Net + text encoder, AdamW, MSE loss."""
    from diffusers import DDPMScheduler, StableDiffusionPipeline

    from trainer.networks.inject import add_lora

    torch.manual_seed(0)
    pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None, requires_safety_checker=False)
    unet, te, tok, vae = pipe.unet, pipe.text_encoder, pipe.tokenizer, pipe.vae
    sched = DDPMScheduler.from_config(pipe.scheduler.config)
    lora = add_lora(unet, [te], dim=4, alpha=2.0)
    opt = torch.optim.AdamW(lora.parameters(), lr=1e-3)
    latents, captions = encode_dataset(vae, data)
    out = []
    for step in range(steps):
        t0 = time.perf_counter()
        idx, x0, noise, t = draw(step, batch, latents, sched)
        ids = tok([captions[i] for i in idx], padding="max_length", max_length=tok.model_max_length,
                  truncation=True, return_tensors="pt").input_ids
        pred = unet(sched.add_noise(x0, noise, t), t, te(ids)[0]).sample
        apply_step(torch.nn.functional.mse_loss(pred, noise), lora, opt)
        out.append(time.perf_counter() - t0)
    return out[skip:]


def bare_sdxl_step_times(model: Path, data: Path, steps: int, skip: int, batch: int) -> list[float]:
    """The SDXL version of bare_step_times: two encoders, pooled embedding, time ids."""
    from diffusers import DDPMScheduler, StableDiffusionXLPipeline

    from trainer.networks.inject import add_lora

    torch.manual_seed(0)
    pipe = StableDiffusionXLPipeline.from_pretrained(model)
    unet, vae = pipe.unet, pipe.vae
    tes, toks = [pipe.text_encoder, pipe.text_encoder_2], [pipe.tokenizer, pipe.tokenizer_2]
    sched = DDPMScheduler.from_config(pipe.scheduler.config)
    lora = add_lora(unet, tes, dim=4, alpha=2.0)
    opt = torch.optim.AdamW(lora.parameters(), lr=1e-3)
    latents, captions = encode_dataset(vae, data)
    time_ids = torch.tensor([[64, 64, 0, 0, 64, 64]] * batch, dtype=torch.float32)
    out = []
    for step in range(steps):
        t0 = time.perf_counter()
        idx, x0, noise, t = draw(step, batch, latents, sched)
        outs = [te(tok([captions[i] for i in idx], padding="max_length", max_length=tok.model_max_length,
                       truncation=True, return_tensors="pt").input_ids, output_hidden_states=True)
                for te, tok in zip(tes, toks, strict=True)]
        hidden = torch.cat([o.hidden_states[-2] for o in outs], dim=-1)
        pred = unet(sched.add_noise(x0, noise, t), t, hidden,
                    added_cond_kwargs={"text_embeds": outs[1].text_embeds, "time_ids": time_ids}).sample
        apply_step(torch.nn.functional.mse_loss(pred, noise), lora, opt)
        out.append(time.perf_counter() - t0)
    return out[skip:]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--family", choices=("sd15", "sdxl"), default="sd15")
    args = ap.parse_args()
    from trainer.models.tiny import build_tiny_sd15, build_tiny_sdxl

    tmp = Path(tempfile.mkdtemp(prefix="danlu-bench-"))
    model = tmp / "model"
    if args.family == "sdxl":
        build_tiny_sdxl(0, real_layout=True).save_pretrained(model)
    else:
        build_tiny_sd15(0, four_level=True).save_pretrained(model)
    bare_loop = bare_sdxl_step_times if args.family == "sdxl" else bare_step_times
    family = {"model__family": args.family}
    data = make_dataset(tmp / "data", n=6)
    skip = 10
    engine, bare = [], []
    for r in range(args.rounds):
        bare += bare_loop(model, data, args.steps, skip, batch=2)
        cfg = tiny_config(model, data, training__max_train_steps=args.steps, save__save_every_n_epochs=0, **family)
        engine += engine_step_times(cfg, tmp / f"engine{r}", skip)
    e, b = statistics.median(engine), statistics.median(bare)
    print(f"{args.family} steady-state step: engine {e * 1000:.1f} ms, bare diffusers+peft {b * 1000:.1f} ms, "
          f"ratio engine/bare = {e / b:.3f} (target <= 1.10)")
    # Latent cache: epoch 2 (15 steps an epoch here) with and without cached latents.
    per_epoch = 15
    cached = uncached = []
    for cache in (True, False):
        cfg = tiny_config(model, data, training__max_train_epochs=2, speed__cache_latents=cache,
                          save__save_every_n_epochs=0, **family)
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
