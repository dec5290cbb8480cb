"""Preview images during training, with the sampler and prompts the user chose."""

from __future__ import annotations

from pathlib import Path

import torch

from trainer.engine.prompts import parse_prompts
from trainer.textio import inside

SCHEDULERS = {
    "ddim": ("DDIMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "dpm_2": ("KDPM2DiscreteScheduler", {}),
    "dpm_2_a": ("KDPM2AncestralDiscreteScheduler", {}),
    "dpmsolver++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "unipc": ("UniPCMultistepScheduler", {}),
}


def make_scheduler(name: str, config):
    import diffusers

    cls_name, kwargs = SCHEDULERS[name]
    return getattr(diffusers, cls_name).from_config(config, **kwargs)


def generate_samples(cfg, models, *, step: int, epoch: int, out_dir: Path, reporter) -> list[Path]:
    """Render every prompt with the current LoRA. Global RNG state is left untouched, so a run with previews
    trains exactly like one without."""
    s = cfg.sampling
    prompts = parse_prompts(s.sample_prompts, negative=s.sample_negative_prompt, width=s.sample_width,
                            height=s.sample_height, seed=s.sample_seed, steps=s.sample_steps, cfg=s.sample_cfg)
    if not prompts:
        return []
    family = models.family
    pipe = family.preview_pipeline(models, family.preview_scheduler(s.sample_sampler, models.noise_scheduler))
    pipe.set_progress_bar_config(disable=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    modules = [models.unet, *models.text_encoders]
    was_training = [m.training for m in modules]
    for m in modules:
        m.eval()
    device = next(models.unet.parameters()).device
    autocast = torch.autocast(device.type, enabled=device.type == "cuda")
    with torch.random.fork_rng(devices=[]), torch.no_grad(), autocast:
        for i, p in enumerate(prompts):
            generator = torch.Generator(device="cpu").manual_seed(p.seed)
            # Embeddings from the family's own encoder call (the training conditioning, long prompts included):
            # diffusers' clip_skip reaches for CLIPTextModel.text_model, which transformers 5 removed.
            inputs = family.preview_inputs(models, cfg, p.prompt, p.negative)
            image = pipe(**inputs, width=p.width, height=p.height, num_inference_steps=p.steps,
                         generator=generator, **family.preview_call_args(p)).images[0]
            path = inside(out_dir, f"{cfg.save.output_name}_e{epoch:04d}_s{step:07d}_{i:02d}.png")
            image.save(path)
            reporter.sample(step=step, epoch=epoch, path=path, prompt=p.prompt, image=image)
            paths.append(path)
    for m, training in zip(modules, was_training, strict=True):
        m.train(training)
    return paths
