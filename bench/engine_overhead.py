"""Engine overhead: steady-state step time of `trainer.engine` against a bare diffusers + peft loop doing the
same work on the same model and data, and against the FLOOR: the bare U-Net forward + backward with no adapter
(gradients to the inputs only), the least any LoRA trainer can spend per step.

    python bench/engine_overhead.py [--family sd15|sdxl] [--size tiny|full] [--steps 40] [--rounds 2]
                                    [--set speed.xxx=VALUE ...] [--profile] [--json out.json]

--size full: SD1.5's (or SDXL's) real architecture with random weights (bench/models.py), 64 px, batch 2, as
issue 18 measures it. --set passes engine settings (e.g. the speed switches) to the engine run only; the bare
loop and the floor stay the reference. --profile adds a torch.profiler table of where an engine step's time
goes (data, text encoder, U-Net, adapter layers, backward, optimizer, reporting, host syncs).

Two floors are printed: `floor` is the U-Net alone (text-encoder outputs computed beforehand, as a U-Net-only
LoRA with cached outputs needs); `floor+TE` also runs the text encoder forward and backward (gradients to its
token embeddings), the least a LoRA that trains the text encoder, like this benchmark's, must spend.

All loops run in this process, alternating, so outside load hits them alike. Target: engine/bare <= 1.05.
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

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.models import save_model  # noqa: E402
from tests.engine_helpers import make_dataset, tiny_config  # noqa: E402
from trainer.engine.host_memory import keep_freed_blocks  # noqa: E402
from trainer.engine.precision import pick_device  # noqa: E402
from trainer.engine.run import train  # noqa: E402

TARGET = 1.05
SKIP = {"tiny": 5, "full": 3}  # warm-up steps left out of every loop's figures
DIM = {"tiny": 4, "full": 8}  # LoRA rank: the tests' tiny one, and issue 18's full-size one


def engine_config(model: Path, data: Path, family: str, size: str, sets: list[str], **overrides):
    from trainer.config.overlay import apply_sets

    cfg = tiny_config(model, data, model__family=family, save__save_every_n_epochs=0,
                      network__network_dim=DIM[size], network__network_alpha=DIM[size] / 2, **overrides)
    return apply_sets(cfg, sets) if sets else cfg


def engine_step_times(cfg, run_dir: Path, skip: int) -> list[tuple[float, float]]:
    """(wall, CPU) seconds between the ends of consecutive optimizer steps after `skip` warm-up steps, the clocks
    read where the session marks each step finished."""
    from bench.profile_engine import after_each_step

    stamps = []
    with after_each_step(lambda: stamps.append((time.perf_counter(), time.process_time()))):
        if train(cfg, run_dir) != 0:
            raise RuntimeError(f"the engine run failed: see {run_dir / 'train.log'}")
    return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(stamps[skip:], stamps[skip + 1:], strict=False)]


def encode_dataset(vae, data: Path):
    """Latents (64 px, centre crop) and captions of the bench dataset, encoded once, as the latent cache does."""
    from trainer.data.images import fit_to_bucket, load_image
    from trainer.data.tensors import to_tensor

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


class Bare:
    """A pipeline's parts and its conditioning written directly with diffusers, for the bare loop and floor."""

    def __init__(self, model: Path, family: str, data: Path, batch: int):
        from diffusers import DDPMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline
        from diffusers.models.attention_processor import AttnProcessor2_0

        torch.manual_seed(0)
        self.sdxl = family == "sdxl"
        pipe = (StableDiffusionXLPipeline if self.sdxl else StableDiffusionPipeline).from_pretrained(model)
        self.unet, vae = pipe.unet, pipe.vae
        self.tes = [pipe.text_encoder, pipe.text_encoder_2] if self.sdxl else [pipe.text_encoder]
        self.toks = [pipe.tokenizer, pipe.tokenizer_2] if self.sdxl else [pipe.tokenizer]
        self.sched = DDPMScheduler.from_config(pipe.scheduler.config)
        for part in (self.unet, vae, *self.tes):
            part.requires_grad_(False)
        self.unet.set_attn_processor(AttnProcessor2_0())  # the engine's default (speed.sdpa)
        self.latents, self.captions = encode_dataset(vae, data)
        self.time_ids = torch.tensor([[64, 64, 0, 0, 64, 64]] * batch, dtype=torch.float32)  # SDXL's size ids
        self.batch = batch

    def conditioning(self, idx: list[int]):
        """(hidden states, added_cond_kwargs) as the engine builds them: SDXL joins both encoders' penultimate
        layers and adds encoder 2's pooled output and the size/crop ids."""
        caps = [self.captions[i] for i in idx]
        outs = [te(tok(caps, padding="max_length", max_length=tok.model_max_length, truncation=True,
                       return_tensors="pt").input_ids, output_hidden_states=self.sdxl)
                for te, tok in zip(self.tes, self.toks, strict=True)]
        if not self.sdxl:
            return outs[0][0], None
        hidden = torch.cat([o.hidden_states[-2] for o in outs], dim=-1)
        return hidden, {"text_embeds": outs[1].text_embeds, "time_ids": self.time_ids}

    def predict(self, step: int, cond=None, inputs_grad: bool = False):
        """(U-Net prediction, noise) for this step's batch; `cond` overrides the conditioning."""
        idx, x0, noise, t = draw(step, self.batch, self.latents, self.sched)
        hidden, added = cond(idx) if cond else self.conditioning(idx)
        noisy = self.sched.add_noise(x0, noise, t)
        if inputs_grad:  # the floor: gradients flow to the inputs only
            noisy.requires_grad_(True)
            hidden = hidden if hidden.requires_grad else hidden.detach().requires_grad_(True)
        return self.unet(noisy, t, hidden, added_cond_kwargs=added).sample, noise


def timed(steps: int, skip: int, fn) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each call of fn(step) after `skip` warm-up steps. CPU time is far less skewed
    than wall time when other jobs share the machine."""
    out = []
    for step in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(step)
        out.append((time.perf_counter() - t0, time.process_time() - c0))
    return out[skip:]


def medians(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def floor_step_times(bare: Bare, steps: int, skip: int, with_te: bool) -> list[tuple[float, float]]:
    """U-Net forward + backward with no adapter and gradients to the inputs only. Without `with_te` the
    text-encoder outputs come from a table filled beforehand; with it the encoders run forward and backward
    too (gradients to their token embeddings)."""
    if with_te:
        hooks = [te.get_input_embeddings().register_forward_hook(lambda m, i, o: o.requires_grad_(True))
                 for te in bare.tes]
        cond = None
    else:
        with torch.no_grad():
            table = [bare.conditioning([i] * bare.batch) for i in range(len(bare.captions))]

        def cond(idx):
            hidden = torch.stack([table[i][0][0] for i in idx])
            added = None if table[0][1] is None else {k: torch.stack([table[i][1][k][0] for i in idx])
                                                       for k in table[0][1]}
            return hidden, added

    def step(i):
        pred, noise = bare.predict(i, cond, inputs_grad=True)
        loss = torch.nn.functional.mse_loss(pred, noise)
        loss.backward()
        float(loss.detach())  # wait for the step, as every trainer's loss report does

    try:
        return timed(steps, skip, step)
    finally:
        for h in hooks if with_te else []:
            h.remove()


def bare_step_times(bare: Bare, steps: int, skip: int, dim: int) -> list[tuple[float, float]]:
    """The engine's work written directly: cached latents, LoRA on U-Net + text encoder(s), AdamW, MSE loss."""
    from trainer.networks.inject import add_lora

    lora = add_lora(bare.unet, bare.tes, dim=dim, alpha=dim / 2)
    opt = torch.optim.AdamW(lora.parameters(), lr=1e-3)

    def step(i):
        pred, noise = bare.predict(i)
        loss = torch.nn.functional.mse_loss(pred, noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lora.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        float(loss.detach())

    return timed(steps, skip, step)


def measure_overhead(model: Path, data: Path, tmp: Path, family: str, size: str, steps: int, rounds: int,
                     sets: list[str] | None = None, log=print) -> dict:
    """Median step times (seconds) of the engine, the bare loop and both floors, over `rounds` alternations."""
    engine, bare, floor, floor_te = [], [], [], []
    for r in range(rounds):
        parts = Bare(model, family, data, batch=2)
        skip = SKIP[size]
        floor += floor_step_times(parts, steps, skip, with_te=False)
        floor_te += floor_step_times(parts, steps, skip, with_te=True)
        bare += bare_step_times(parts, steps, skip, DIM[size])
        del parts
        gc.collect()
        cfg = engine_config(model, data, family, size, sets or [], training__max_train_steps=steps)
        engine += engine_step_times(cfg, tmp / f"engine-{family}-{size}-{r}", skip)
        gc.collect()
        log(f"round {r + 1}/{rounds} (CPU ms): engine {medians(engine)[1] * 1e3:.1f}, "
            f"bare {medians(bare)[1] * 1e3:.1f}, floor {medians(floor)[1] * 1e3:.1f}")
    out = {"family": family, "size": size, "steps": steps, "rounds": rounds, "sets": sets or []}
    for clock, i in (("wall", 0), ("cpu", 1)):
        e, b, f, ft = (medians(x)[i] for x in (engine, bare, floor, floor_te))
        out[clock] = {"engine_s": e, "bare_s": b, "floor_s": f, "floor_te_s": ft, "engine_over_bare": e / b,
                      "engine_over_floor": e / f, "engine_over_floor_te": e / ft}
    return out


def report_overhead(r: dict) -> str:
    lines = []
    for clock in ("cpu", "wall"):
        c = r[clock]
        lines.append(f"{r['family']} {r['size']} step, {clock} time: engine {c['engine_s'] * 1e3:.1f} ms, bare "
                     f"diffusers+peft {c['bare_s'] * 1e3:.1f} ms, floor {c['floor_s'] * 1e3:.1f} ms (floor+TE "
                     f"{c['floor_te_s'] * 1e3:.1f} ms): engine/bare = {c['engine_over_bare']:.3f} (target <= "
                     f"{TARGET}), engine/floor = {c['engine_over_floor']:.2f}, engine/(floor+TE) = "
                     f"{c['engine_over_floor_te']:.2f}")
    return "\n".join(lines)


def prepare(tmp: Path, family: str, size: str) -> tuple[Path, Path]:
    """The model folder and the six-image dataset the benchmark trains on."""
    model = tmp / f"model-{family}-{size}"
    if not model.exists():
        save_model(model, family, size)
    data = tmp / "data"
    if not data.exists():
        make_dataset(data, n=6)
    # A CPU engine run sets malloc to keep freed blocks (trainer/engine/host_memory.py) for the rest of the
    # process; set it from the start so the bare loop and the floor run under the same allocator.
    keep_freed_blocks(pick_device())
    return model, data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--family", choices=("sd15", "sdxl"), default="sd15")
    ap.add_argument("--size", choices=("tiny", "full"), default="tiny")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="an engine setting for the engine run, e.g. --set speed.sdpa=false (repeatable)")
    ap.add_argument("--profile", action="store_true", help="also print where an engine step's time goes")
    ap.add_argument("--no-cache", action="store_true", help="skip the latent-cache measurement")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="danlu-bench-"))
    t0 = time.perf_counter()
    model, data = prepare(tmp, args.family, args.size)
    print(f"{args.size} {args.family} model ready in {time.perf_counter() - t0:.0f} s", flush=True)
    result = measure_overhead(model, data, tmp, args.family, args.size, args.steps, args.rounds, args.set)
    print(report_overhead(result), flush=True)
    if not args.no_cache:
        from bench import latent_cache

        result["latent_cache"] = c = latent_cache.measure(model, data, tmp, args.family, args.size, args.set)
        print(latent_cache.report(c))
    if args.profile:
        from bench.profile_engine import profile_engine

        cfg = engine_config(model, data, args.family, args.size, args.set, training__max_train_steps=args.steps)
        result["profile"] = table = profile_engine(cfg, tmp / "profiled", skip=SKIP[args.size])
        print(table["text"])
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
