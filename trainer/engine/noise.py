"""Noise, timesteps, targets and the loss of one diffusion training step (epsilon or v-prediction)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.training_utils import compute_snr


def sample_noise(latents: torch.Tensor, *, offset: float, multires_iterations: int, multires_discount: float,
                 adaptive_scale: float = 0.0, random_strength: bool = False, channel_mean: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Training noise shaped like `latents`. The adaptive offset reads `channel_mean`, the absolute mean of each latent
    channel ([B, C, 1, 1]), by default `latents`' own (a global draw passes the real rows' means: its `latents` is
    only a stand-in of the right shape)."""
    noise = torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
    if offset > 0:
        # A per-image, per-channel constant lets the model shift an image's overall brightness. sd-scripts' two
        # refinements: a strength drawn in [0, offset) each step, and an offset that grows with how far each latent
        # channel's mean is from zero (adaptive; a negative scale shrinks it, never below zero).
        strength = offset * torch.rand(1, generator=generator).to(latents.device, latents.dtype) if random_strength \
            else offset
        if adaptive_scale:
            mean = latents.mean(dim=(2, 3), keepdim=True).abs() if channel_mean is None else channel_mean
            strength = (strength + adaptive_scale * mean.to(latents.device, latents.dtype)).clamp(min=0)
        b, c = latents.shape[:2]
        noise = noise + strength * torch.randn((b, c, 1, 1), generator=generator, device=latents.device,
                                               dtype=latents.dtype)
    if multires_iterations > 0:
        noise = _pyramid_noise(noise, multires_iterations, multires_discount, generator)
    return noise


def input_perturbation(latents: torch.Tensor, gamma: float, random_strength: bool,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """sd-scripts' ip_noise_gamma: extra noise added to the model's input only, gamma (or, with random_strength, a
    strength drawn in [0, gamma) each step) times a standard normal."""
    strength = gamma * torch.rand(1, generator=generator).item() if random_strength else gamma
    return strength * torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)


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


def huber_threshold(scheduler, timesteps: torch.Tensor, schedule: str, c: float, scale: float):
    """c of the huber/smooth_l1 loss for each sample, by sd-scripts' huber_schedule: large at low noise (close
    to l2 there) falling to huber_c at the noisiest steps. "none" is Danlu's fixed c for PyTorch's losses."""
    if schedule == "none":
        return c
    if schedule == "constant":
        return torch.full(timesteps.shape, c * scale, dtype=torch.float32, device=timesteps.device)
    if schedule == "exponential":
        steps = scheduler.config.num_train_timesteps
        return scale * torch.exp(math.log(c) * timesteps.float() / steps) if c > 0 else \
            torch.zeros(timesteps.shape, device=timesteps.device)
    if schedule == "snr":
        alphas = scheduler.alphas_cumprod.to(timesteps.device)[timesteps].float()
        sigmas = ((1.0 - alphas) / alphas) ** 0.5
        return (1 - c) / (1 + sigmas) ** 2 + c
    raise ValueError(f"optimizer.huber_schedule: unknown '{schedule}'")


def per_sample_loss(pred: torch.Tensor, target: torch.Tensor, loss_type: str, huber_c, schedule: str = "none",
                    mask: torch.Tensor | None = None):
    """Mean loss of each sample. huber/smooth_l1: with schedule "none", PyTorch's losses with threshold
    `huber_c`; otherwise sd-scripts' pseudo-Huber with the per-sample `huber_c` of huber_threshold().
    `mask` [B, 1, h, w] in 0..1 (dataset.alpha_mask) weighs each latent pixel, resized to the prediction's size by
    area; the mean stays over every pixel, as sd-scripts' masked loss, so a half-masked image weighs half."""
    pred, target = pred.float(), target.float()
    if loss_type in ("huber", "smooth_l1") and schedule != "none":
        c = huber_c.view(-1, *([1] * (pred.ndim - 1)))
        loss = 2 * (torch.sqrt((pred - target) ** 2 + c ** 2) - c)
        if loss_type == "huber":
            loss = c * loss
    elif loss_type == "l2":
        loss = F.mse_loss(pred, target, reduction="none")
    elif loss_type == "l1":
        loss = F.l1_loss(pred, target, reduction="none")
    elif loss_type == "huber":
        loss = F.huber_loss(pred, target, reduction="none", delta=huber_c)
    elif loss_type == "smooth_l1":
        loss = F.smooth_l1_loss(pred, target, reduction="none", beta=huber_c)
    else:
        raise ValueError(f"optimizer.loss_type: unknown '{loss_type}'")
    if mask is not None:  # the dataset gives it at the latents' size already: resized only where that differs
        mask = mask.to(loss)
        loss = loss * (mask if mask.shape[2:] == loss.shape[2:] else F.interpolate(mask, size=loss.shape[2:],
                                                                                    mode="area"))
    return loss.mean(dim=list(range(1, loss.ndim)))


def debiased_weights(scheduler, timesteps: torch.Tensor, v_prediction: bool) -> torch.Tensor:
    """sd-scripts' debiased estimation: 1/sqrt(SNR), or 1/(SNR+1) for v-prediction, with SNR capped at 1000."""
    snr = torch.clamp(compute_snr(scheduler, timesteps), max=1000)
    return 1 / (snr + 1) if v_prediction else 1 / torch.sqrt(snr)


def v_pred_scale(scheduler, timesteps: torch.Tensor) -> torch.Tensor:
    """SNR/(SNR+1), SNR capped at 1000 (at timestep 0 it is infinite): how much less a v-prediction loss weighs a
    timestep than a noise-prediction loss does (sd-scripts' scale_v_pred_loss_like_noise_pred, v_pred_like_loss)."""
    snr = torch.clamp(compute_snr(scheduler, timesteps), max=1000)
    return snr / (snr + 1)


def min_snr_weights(scheduler, timesteps: torch.Tensor, gamma: float, v_prediction: bool) -> torch.Tensor:
    """Min-SNR-gamma weighting (Hang et al. 2023): down-weights the easy, low-noise timesteps."""
    snr = compute_snr(scheduler, timesteps)
    clipped = torch.clamp(snr, max=gamma)
    return clipped / (snr + 1) if v_prediction else clipped / snr
