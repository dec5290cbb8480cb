"""Flow matching as sd-scripts' Flux training does it (flux_train_utils): sigmas in (0, 1), the noisy input
(1 - sigma) * latents + sigma * noise, the target noise - latents, and the three model_prediction_type rules.

Timestep sampling modes (sigma draws per sample; the timestep the model sees is sigma * 1000):
- uniform: U(0, 1);
- sigmoid: sigmoid(sigmoid_scale * N(0, 1));
- shift: the sigmoid draw s mapped to s * shift / (1 + (shift - 1) * s), shift = discrete_flow_shift;
- flux_shift: the sigmoid draw shifted by Flux's resolution-dependent mu (0.5 at 256 packed tokens, 1.15 at
  4096, linear between): exp(mu) / (exp(mu) + 1/s - 1);
- sigma: an index into the 1000 sigmas of a FlowMatchEulerDiscreteScheduler(shift=discrete_flow_shift), drawn
  by the SD3 weighting scheme's density (uniform for none, sigma_sqrt and cosmap).

Weighting schemes (flux.weighting_scheme) come from diffusers.training_utils, used where sd-scripts uses them:
the density only in the sigma mode, the loss weights only with the sigma_scaled prediction type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

MODES = ("sigma", "uniform", "sigmoid", "shift", "flux_shift")
TRAIN_TIMESTEPS = 1000


def _schema_default(name: str):
    """flux.<name>'s default, from the schema (trainer.config), never retyped here."""
    from trainer.config.groups_misc import FluxGroup

    return FluxGroup.model_fields[name].default


@dataclass(frozen=True)
class Weighting:
    """flux.weighting_scheme and its parameters (sd-scripts' names), defaulting as the schema does."""

    scheme: str = _schema_default("weighting_scheme")
    logit_mean: float = _schema_default("logit_mean")
    logit_std: float = _schema_default("logit_std")
    mode_scale: float = _schema_default("mode_scale")


def flux_mu(packed_tokens: int, base: float = 0.5, top: float = 1.15, lo: int = 256, hi: int = 4096) -> float:
    """Flux's shift exponent for an image of `packed_tokens` 2x2 latent patches (linear in the token count)."""
    slope = (top - base) / (hi - lo)
    return packed_tokens * slope + base - slope * lo


def shifted(sigmas: torch.Tensor, shift: float) -> torch.Tensor:
    return sigmas * shift / (1 + (shift - 1) * sigmas)


def mu_shifted(sigmas: torch.Tensor, mu: float) -> torch.Tensor:
    return math.exp(mu) / (math.exp(mu) + (1 / sigmas - 1))


def sample_sigmas(mode: str, batch: int, *, latent_hw: tuple[int, int], sigmoid_scale: float = 1.0,
                  shift: float = 3.0, weighting: Weighting = Weighting(),
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """One sigma per sample, drawn as `mode` says (see the module docstring)."""
    if mode == "uniform":
        return torch.rand(batch, generator=generator)
    if mode == "sigma":
        from diffusers.training_utils import compute_density_for_timestep_sampling

        table = _sigma_table(shift)
        u = compute_density_for_timestep_sampling(weighting.scheme, batch, logit_mean=weighting.logit_mean,
                                                  logit_std=weighting.logit_std, mode_scale=weighting.mode_scale,
                                                  generator=generator)
        # u can reach 1.0 (mode at a draw of 0, a float-rounded sigmoid): keep the index on the 1000 steps
        index = (u * TRAIN_TIMESTEPS).long().clamp(0, TRAIN_TIMESTEPS - 1)
        return table[index].float()
    base = torch.sigmoid(sigmoid_scale * torch.randn(batch, generator=generator))
    if mode == "sigmoid":
        return base
    if mode == "shift":
        return shifted(base, shift)
    if mode == "flux_shift":
        h, w = latent_hw
        return mu_shifted(base, flux_mu((h // 2) * (w // 2)))
    raise ValueError(f"flux.timestep_sampling {mode!r} is not one of {MODES}")


@lru_cache(maxsize=4)
def _sigma_table(shift: float) -> torch.Tensor:
    """The 1000 sigmas of FlowMatchEulerDiscreteScheduler(shift): built once, not on every training step. Only
    indexed (never written), so the cached tensor is shared safely."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=TRAIN_TIMESTEPS, shift=shift).sigmas


def loss_weights(prediction_type: str, scheme: str, sigmas: torch.Tensor) -> torch.Tensor | None:
    """Per-sample loss weights of the SD3 scheme, or None where sd-scripts applies none (every prediction type
    but sigma_scaled)."""
    if prediction_type != "sigma_scaled":
        return None
    from diffusers.training_utils import compute_loss_weighting_for_sd3

    return compute_loss_weighting_for_sd3(scheme, sigmas)


def _expand(sigmas: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return sigmas.to(like.device, like.dtype).view(-1, *([1] * (like.ndim - 1)))


def noisy_input_and_target(latents: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor):
    s = _expand(sigmas, latents)
    return (1 - s) * latents + s * noise, noise - latents


def apply_prediction_type(kind: str, pred: torch.Tensor, noisy: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """The model output as sd-scripts' apply_model_prediction_type turns it into the prediction compared with
    the target: raw as is, additive + noisy input, sigma_scaled * (-sigma) + noisy input."""
    if kind == "raw":
        return pred
    if kind == "additive":
        return pred + noisy
    if kind == "sigma_scaled":
        return pred * -_expand(sigmas, pred) + noisy
    raise ValueError(f"flux.model_prediction_type {kind!r} is not raw, additive or sigma_scaled")
