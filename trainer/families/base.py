"""The interface the engine calls for a model family, with the DDPM noise that SD1.x and SDXL share.

A family turns a config into model parts, captions into conditioning (a dict of tensors, one row per
caption, which is what the text-encoder cache stores), a batch into the U-Net's extra inputs, and builds
the preview pipeline. The session and loop call only these methods.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainer.engine import noise as noise_lib


@dataclass
class Parts:
    """A loaded base model. text_encoders/tokenizers are in the family's order (te1, te2, ...)."""

    unet: Any
    vae: Any
    text_encoders: list
    tokenizers: list
    noise_scheduler: Any
    source_path: Path | None = None


class Family:
    vae_fp32 = False  # keep the VAE in float32 whatever the mixed precision (SDXL's overflows in fp16)
    # load() takes dtype/vae_dtype and reads the weights straight into the run's dtypes (Flux: its 12B transformer
    # would need 48 GB read in float32); the others load float32 and load_models casts.
    loads_in_run_dtype = False
    flow_matching = False  # Flux: no DDPM scheduler, prediction type or SD attention processors
    header_args: tuple[str, ...] = ()  # sd-scripts arguments only this family's LoRA header carries (ss_<name>)

    def __init__(self, spec) -> None:
        """`spec`: the family's FamilySpec (trainer/families/<name>/__init__.py), whose names the engine reads here."""
        self.spec = spec
        self.name = spec.name
        self.base_model_version = spec.base_model_version  # ss_base_model_version
        self.modelspec_architecture = spec.modelspec_architecture  # Flux's load() says dev or schnell
        self.modelspec_implementation = spec.modelspec_implementation

    def for_config(self, cfg) -> Family:
        """The family object for one run (a family whose training reads run settings returns a bound copy)."""
        return self

    def adapted_text_encoders(self, text_encoders: list) -> list:
        """The text encoders a LoRA may adapt, in the te1, te2 order of the key names."""
        return text_encoders

    def attention_context(self, device: torch.device) -> contextlib.AbstractContextManager:
        """Where the training step (forward, the backward with its checkpointed recomputation, and validation)
        runs: the attention kernels this family may use on `device`. PyTorch's own choice by default."""
        return contextlib.nullcontext()

    def original_layout(self, unet, vae, text_encoders: list) -> dict[str, torch.Tensor] | None:
        """The whole model under the key names the WebUIs load (a Dreambooth checkpoint); None: not supported."""
        return None

    def swapped_blocks(self, unet) -> list:
        """The denoiser blocks kept in CPU memory between uses (trainer.engine.block_swap); none by default."""
        return []

    # --- loading and conditioning (each family) ------------------------------------------------------
    def load(self, model_cfg, cache_dir: Path, progress) -> Parts:
        raise NotImplementedError

    def encode(self, text_encoders: list, tokenizers: list, captions: list[str], cfg) -> dict[str, torch.Tensor]:
        """Conditioning for `captions`: every tensor has one row per caption."""
        raise NotImplementedError

    def text_cache_key(self, cfg) -> str:
        """What, besides the encoders' weights, changes `encode`'s output (so cached outputs never go stale)."""
        weighted = "|weighted" if cfg.caption.weighted_captions else ""  # (tag:1.2) weights scale the outputs
        return f"max_token_length={cfg.caption.max_token_length}{weighted}"

    def unet_inputs(self, cond: dict[str, torch.Tensor], batch: dict) -> dict:
        """Keyword arguments of the U-Net call besides the noisy latents and timesteps."""
        return {"encoder_hidden_states": cond["hidden"]}

    def preview_pipeline(self, models, scheduler):
        raise NotImplementedError

    def preview_scheduler(self, sampler: str, noise_scheduler):
        from trainer.engine.sampler import make_scheduler

        return make_scheduler(sampler, noise_scheduler.config)

    def preview_call_args(self, prompt) -> dict:
        """The pipeline's guidance argument for one parsed prompt (CFG scale `--l` for SD)."""
        return {"guidance_scale": prompt.cfg}

    def preview_inputs(self, models, cfg, prompt: str, negative: str) -> dict:
        """The preview pipeline's embedding arguments for one prompt, from `encode` (so previews see what
        training sees: clip_skip, long prompts)."""
        raise NotImplementedError

    def encode_pair(self, models, cfg, prompt: str, negative: str):
        with torch.no_grad():
            return [self.encode(models.text_encoders, models.tokenizers, [text], cfg) for text in (prompt, negative)]

    # --- noise, target and loss weighting (DDPM, shared by the SD families) ------------------------
    def predict(self, unet, noisy, timesteps, cond: dict, batch: dict) -> torch.Tensor:
        """The prediction compared with the target, in the latents' layout."""
        return unet(noisy, timesteps, **self.unet_inputs(cond, batch)).sample

    def sample_timesteps(self, scheduler, latents: torch.Tensor, low: int = 0, high: int | None = None) -> torch.Tensor:
        """One DDPM timestep a sample, uniform in [low, high) (sd-scripts' min_timestep / max_timestep; high: the
        schedule's length when None)."""
        high = scheduler.config.num_train_timesteps if high is None else high
        return torch.randint(low, high, (latents.shape[0],), device=latents.device).long()

    def fixed_timesteps(self, scheduler, fractions: tuple[float, ...]) -> list[int]:
        """Timesteps at fixed points of the schedule (0: least noise), for a validation loss that is comparable."""
        n = scheduler.config.num_train_timesteps
        return [min(n - 1, int(f * n)) for f in fractions]

    def noisy_input_and_target(self, scheduler, latents, noise, timesteps, v_prediction: bool):
        noisy = scheduler.add_noise(latents, noise, timesteps)
        return noisy, noise_lib.training_target(scheduler, latents, noise, timesteps, v_prediction)

    def loss_weights(self, timesteps: torch.Tensor) -> torch.Tensor | None:
        """Per-sample loss weights the family's own settings ask for (Flux: the SD3 weighting scheme); None: none."""
        return None

    def snr_weights(self, scheduler, timesteps, gamma: float, v_prediction: bool) -> torch.Tensor:
        return noise_lib.min_snr_weights(scheduler, timesteps.cpu(), gamma, v_prediction)
