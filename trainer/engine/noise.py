"""Noise, timesteps, targets and the loss of one diffusion training step (epsilon or v-prediction)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.training_utils import compute_snr


def sample_noise(latents: torch.Tensor, *, offset: float, multires_iterations: int, multires_discount: float,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    noise = torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
    if offset > 0:
        # A per-image, per-channel constant lets the model shift an image's overall brightness.
        b, c = latents.shape[:2]
        noise = noise + offset * torch.randn((b, c, 1, 1), generator=generator, device=latents.device,
                                             dtype=latents.dtype)
    if multires_iterations > 0:
        noise = _pyramid_noise(noise, multires_iterations, multires_discount, generator)
    return noise


def _pyramid_noise(noise: torch.Tensor, iterations: int, discount: float, generator) -> torch.Tensor:
    """Add ever coarser noise layers (upsampled), so low frequencies get destroyed too, then renormalise."""
    b, c, h, w = noise.shape
    for i in range(1, iterations + 1):
        scale = 2 ** i
        hh, ww = max(1, h // scale), max(1, w // scale)
        coarse = torch.randn((b, c, hh, ww), generator=generator, device=noise.device, dtype=noise.dtype)
        noise = noise + F.interpolate(coarse, size=(h, w), mode="bilinear") * discount ** i
        if hh == 1 and ww == 1:
            break
    return noise / noise.std()


def training_target(scheduler, latents, noise, timesteps, v_prediction: bool) -> torch.Tensor:
    return scheduler.get_velocity(latents, noise, timesteps) if v_prediction else noise


def per_sample_loss(pred: torch.Tensor, target: torch.Tensor, loss_type: str, huber_c: float) -> torch.Tensor:
    pred, target = pred.float(), target.float()
    if loss_type == "l2":
        loss = F.mse_loss(pred, target, reduction="none")
    elif loss_type == "l1":
        loss = F.l1_loss(pred, target, reduction="none")
    elif loss_type == "huber":
        loss = F.huber_loss(pred, target, reduction="none", delta=huber_c)
    elif loss_type == "smooth_l1":
        loss = F.smooth_l1_loss(pred, target, reduction="none", beta=huber_c)
    else:
        raise ValueError(f"optimizer.loss_type: unknown '{loss_type}'")
    return loss.mean(dim=list(range(1, loss.ndim)))


def min_snr_weights(scheduler, timesteps: torch.Tensor, gamma: float, v_prediction: bool) -> torch.Tensor:
    """Min-SNR-gamma weighting (Hang et al. 2023): down-weights the easy, low-noise timesteps."""
    snr = compute_snr(scheduler, timesteps)
    clipped = torch.clamp(snr, max=gamma)
    return clipped / (snr + 1) if v_prediction else clipped / snr
