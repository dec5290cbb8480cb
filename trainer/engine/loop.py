"""The training loop: one diffusion step per batch, saves, previews, stop requests and loss checks."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import torch
from accelerate import Accelerator

from trainer.config import TrainConfig
from trainer.engine import distributed
from trainer.engine import noise as noise_lib


@dataclass
class StepResult:
    """Left on the device: trainer.engine.readback reads losses and norms back (and checks them) in batches."""

    loss: torch.Tensor  # 0-dim; this process's rows (the readback averages over processes)
    synced: bool
    grad_norms: list[torch.Tensor] = field(default_factory=list)  # per optimizer param group, before clipping
    max_norm: tuple[int, float, float] | None = None  # scale_weight_norms: keys scaled, mean and max key norm


class StepRunner:
    """Computes and applies one batch's loss."""

    def __init__(self, cfg: TrainConfig, models, accelerator: Accelerator, optimizer, scheduler, params,
                 text_cache=None):
        self.cfg, self.m, self.acc = cfg, models, accelerator
        self.optimizer, self.scheduler, self.params = optimizer, scheduler, params
        # Pinned batches (speed.pin_memory) copy to the GPU while it still computes the previous step.
        self.non_blocking = cfg.speed.pin_memory and accelerator.device.type == "cuda"
        self.v_prediction = cfg.model.v_parameterization
        self.text_cache = text_cache  # trainer.data.tensor_cache.TensorCache, when outputs are cached
        # Training steps go through the prepared module (DDP under accelerate launch); validation calls loss().
        self.trained = distributed.prepare_trained(accelerator, models.lora.models, self.loss) if optimizer else None
        self.fused = None  # trainer.engine.fused_backward.FusedBackward: the update runs inside backward

    def _latents(self, batch) -> torch.Tensor:
        if "latents" in batch:
            return batch["latents"].to(self.acc.device, torch.float32, non_blocking=self.non_blocking)
        from trainer.engine.data import encode_pixels

        pixels = batch["pixel_values"].to(self.acc.device, non_blocking=self.non_blocking)
        return encode_pixels(self.m.vae, pixels).to(self.acc.device)

    def _encode(self, captions: list[str]) -> dict[str, torch.Tensor]:
        m = self.m
        return m.family.encode(m.text_encoders, m.tokenizers, captions, self.cfg)

    def _conditioning(self, captions: list[str]) -> dict[str, torch.Tensor]:
        """The family's conditioning for each caption: live when the encoders train, else from the cache."""
        if self.m.train_text_encoder:
            return self._encode(captions)
        if self.text_cache is None:
            with torch.no_grad():
                return self._encode(captions)
        found = self._cached(captions)
        device = self.acc.device
        return {key: torch.stack([found[c][key].to(device) for c in captions]) for key in found[captions[0]]}

    def _cached(self, captions: list[str]) -> dict[str, dict[str, torch.Tensor]]:
        """Each caption's cached outputs, encoding (and storing) the ones not cached yet."""
        found = {c: self.text_cache.get(c) for c in dict.fromkeys(captions)}
        missing = [c for c, hit in found.items() if hit is None]
        if missing:
            with torch.no_grad():
                out = self._encode(missing)
            for i, caption in enumerate(missing):
                entry = {key: value[i] for key, value in out.items()}
                self.text_cache.put(caption, entry)
                found[caption] = entry
        return found

    def fill_text_cache(self, captions: list[str], batch_size: int, progress=lambda done, total: None) -> None:
        """Encode every caption not cached yet, `batch_size` at a time, before training (so the encoders can
        leave the GPU afterwards)."""
        for start in range(0, len(captions), batch_size):
            with self.acc.autocast():
                self._cached(captions[start:start + batch_size])
            progress(min(start + batch_size, len(captions)), len(captions))

    def _training_noise(self, latents, draw, shard) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A training step's noise (offset, pyramid, adaptive as set) and its input perturbation (None: off)."""
        n = self.cfg.noise
        mean = None
        if n.adaptive_noise_scale:  # this rank's own latents, placed at their rows of a global draw
            mean = latents.mean(dim=(2, 3), keepdim=True).abs()
            mean = distributed.global_rows(mean, shard) if shard else mean
        noise = draw(lambda like: noise_lib.sample_noise(
            like, offset=n.noise_offset, multires_iterations=n.multires_noise_iterations,
            multires_discount=n.multires_noise_discount, adaptive_scale=n.adaptive_noise_scale,
            random_strength=n.noise_offset_random_strength, channel_mean=mean))
        perturb = draw(lambda like: noise_lib.input_perturbation(
            like, n.ip_noise_gamma, n.ip_noise_gamma_random_strength)) if n.ip_noise_gamma else None
        return noise, perturb

    def loss(self, batch, noise: torch.Tensor | None = None, timesteps: torch.Tensor | None = None) -> torch.Tensor:
        """The batch's loss; validation passes its own fixed `noise` and `timesteps` (training draws them)."""
        cfg, family, scheduler = self.cfg, self.m.family, self.m.noise_scheduler
        latents = self._latents(batch)
        shard = batch.get("shard")  # several processes: draw for the global batch, keep this rank's rows
        draw = (lambda fn: distributed.global_draw(fn, latents, shard)) if shard else (lambda fn: fn(latents))
        perturb = None
        if noise is None:  # training draws its noise; validation passes fixed noise and has no perturbation
            noise, perturb = self._training_noise(latents, draw, shard)
        if timesteps is None:
            n = cfg.noise
            timesteps = draw(lambda like: family.sample_timesteps(scheduler, like, low=n.min_timestep,
                                                                  high=n.max_timestep))
        noise, timesteps = noise.to(latents.device, latents.dtype), timesteps.to(latents.device)
        noisy, target = family.noisy_input_and_target(scheduler, latents, noise, timesteps, self.v_prediction)
        if perturb is not None:  # sd-scripts' input perturbation: the model sees extra noise its target does not hold
            noisy, _ = family.noisy_input_and_target(scheduler, latents, noise + perturb.to(noise), timesteps,
                                                     self.v_prediction)
        with self.acc.autocast(), family.attention_context(latents.device):
            cond = self._conditioning(batch["captions"])
            pred = family.predict(self.m.unet, noisy, timesteps, cond, batch)
        o = cfg.optimizer
        huber_c = noise_lib.huber_threshold(self.m.noise_scheduler, timesteps, o.huber_schedule, o.huber_c,
                                            o.huber_scale) if o.loss_type in ("huber", "smooth_l1") else o.huber_c
        mask = batch.get("alpha_masks")
        mask = None if mask is None else mask.to(latents.device, non_blocking=self.non_blocking)
        per_sample = noise_lib.per_sample_loss(pred, target, o.loss_type, huber_c, o.huber_schedule, mask)
        weights = torch.where(batch["is_reg"].to(per_sample.device), cfg.dataset.prior_loss_weight, 1.0)
        if cfg.optimizer.min_snr_gamma > 0:
            weights = weights * family.snr_weights(scheduler, timesteps, cfg.optimizer.min_snr_gamma,
                                                   self.v_prediction).to(per_sample.device)
        sd_weights = self._sd_weights(timesteps)
        if sd_weights is not None:  # none are on by default: no extra copy to the GPU each step
            weights = weights * sd_weights.to(per_sample.device)
        family_weights = family.loss_weights(timesteps)
        if family_weights is not None:
            weights = weights * family_weights.to(per_sample.device, per_sample.dtype)
        if shard:
            return (per_sample * weights).sum() * distributed.shard_scale(shard, self.acc.num_processes)
        return (per_sample * weights).mean()

    def _sd_weights(self, timesteps: torch.Tensor) -> torch.Tensor | None:
        """sd-scripts' loss weights by DDPM timestep (SD options, the schema's families): debiased estimation and
        the two v-prediction scalings, each a factor per sample; None when none is on."""
        o, scheduler = self.cfg.optimizer, self.m.noise_scheduler
        if not (o.debiased_estimation_loss or o.scale_v_pred_loss_like_noise_pred or o.v_pred_like_loss):
            return None  # before .cpu(): reading the timesteps back would wait for the GPU every step
        timesteps = timesteps.cpu()
        weights = torch.ones(len(timesteps))
        if o.debiased_estimation_loss:
            weights = weights * noise_lib.debiased_weights(scheduler, timesteps, self.v_prediction)
        scale = noise_lib.v_pred_scale(scheduler, timesteps) if o.scale_v_pred_loss_like_noise_pred or \
            o.v_pred_like_loss else None
        if o.scale_v_pred_loss_like_noise_pred:
            weights = weights * scale
        if o.v_pred_like_loss:  # loss + loss / scale x k
            weights = weights * (1 + o.v_pred_like_loss / scale)
        return weights

    def step(self, batch, global_step: int, sync: bool) -> StepResult:
        """Add this batch's gradients; with `sync`, apply them (under DDP: average them across processes
        during this backward). Accumulation is counted here rather than by accelerate, whose own counter cannot
        see where our (resumable) batch sampler ends an epoch."""
        # the attention kernels hold for the backward too: gradient checkpointing recomputes the forward there
        with contextlib.nullcontext() if sync else self.acc.no_sync(self.trained), \
                self.m.family.attention_context(self.acc.device):
            loss = self.trained(batch)
            value = loss.detach()
            self.acc.backward(loss / self.cfg.training.gradient_accumulation_steps)
        norms: list[torch.Tensor] = []
        if self.fused is not None:  # every weight was updated (and its gradient freed) during backward
            self.scheduler.step()
            return StepResult(value, sync, self.fused.take_grad_norms())
        if sync:
            norms = grad_norm_tensors(self.optimizer.param_groups, self.acc.scaler)
            if self.cfg.training.max_grad_norm > 0:
                self.acc.clip_grad_norm_(self.params, self.cfg.training.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            limit = self.cfg.network.scale_weight_norms
            if limit > 0:
                return StepResult(value, sync, norms, self.m.lora.apply_max_norm(limit))
        return StepResult(value, sync, norms)


def grad_norm_tensors(param_groups, scaler=None) -> list[torch.Tensor]:
    """The L2 norm of each param group's gradients as the optimizer would see them before clipping (an fp16
    loss scale divided out, so the numbers mean the same with and without mixed precision), left on the device
    (no wait for the GPU; trainer.engine.readback reads them with the loss)."""
    scale = 1.0
    if scaler is not None and scaler.is_enabled():
        # torch's GradScaler keeps the scale in a tensor; dividing by it does not wait for the GPU as get_scale() does.
        scale = getattr(scaler, "_scale", None)
        scale = scale.float() if isinstance(scale, torch.Tensor) else float(scaler.get_scale())
    out = []
    for group in param_groups:
        grads = [p.grad for p in group["params"] if p.grad is not None]
        if not grads:
            out.append(torch.zeros(()))
            continue
        # One fused norm per group instead of a norm per tensor (measured: the per-tensor loop was most of the
        # engine's overhead over a bare loop), in fp32 so that scaled fp16 gradients cannot overflow.
        per_tensor = torch._foreach_norm(grads, 2, dtype=torch.float32)
        out.append(torch.linalg.vector_norm(torch.stack(per_tensor)) / scale)
    return out


def optimizer_steps_per_epoch(batches: int, accumulation: int) -> int:
    """Optimizer steps in an epoch of `batches` (the last, partial accumulation group still steps)."""
    return math.ceil(batches / accumulation)


def total_steps(cfg: TrainConfig, per_epoch: int) -> tuple[int, int]:
    """(total optimizer steps, epochs). max_train_steps, when set, wins over the epoch count."""
    t = cfg.training
    if t.max_train_steps > 0:
        return t.max_train_steps, math.ceil(t.max_train_steps / per_epoch)
    return per_epoch * t.max_train_epochs, t.max_train_epochs


def epoch_save_interval(save, epochs: int) -> int:
    """Epochs between saves of the save settings `save` in a run of `epochs` (0: only the final file).
    save_n_epoch_ratio, when set, replaces save_every_n_epochs with epochs / ratio rounded down, at least 1, as
    sd-scripts computes it (over all the run's epochs, a later initial_epoch too)."""
    if save.save_n_epoch_ratio > 0:
        return max(1, epochs // save.save_n_epoch_ratio)
    return save.save_every_n_epochs


def lrs_of(optimizer, names: list[str]) -> dict[str, float]:
    out = {}
    for name, group in zip(names, optimizer.param_groups, strict=False):
        lr = group["lr"]
        if "d" in group:  # D-Adaptation / Prodigy: the effective step is d x lr
            lr = group["d"] * lr
        out[name] = float(lr)
    return out
