"""Dreambooth: the model parts themselves are trained (no adapters), with their own learning rates.

`FullSet` stands where a LoRA run has its `LoraSet`: the session and loop ask it for the trained components
(`models`, saved in a resume state), their parameters, and the optimizer groups. Freezing the text encoders
after `stop_text_encoder_training` steps works by encoding captions without gradients from then on: their
parameters get no gradient, so every optimizer skips them (no update, no weight decay), while they stay in
the optimizer and the saved state unchanged, so a resume is exact.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

from torch import nn

UNET = "unet"
TEXT_ENCODER_NAMES = ("text_encoder", "text_encoder_2")


@dataclass
class FullSet:
    models: dict[str, nn.Module]  # trained components: "unet", "text_encoder", "text_encoder_2"
    lrs: dict[str, float]  # learning rate of each trained component
    ema: object | None = field(default=None, repr=False)  # diffusers' EMAModel over parameters(), or None

    def after_optimizer_step(self) -> None:
        if self.ema is not None:
            self.ema.step(self.parameters())

    @contextmanager
    def saved_weights(self):
        """Inside: the weights a save writes (the EMA average when EMA is on), the trained ones again after."""
        if self.ema is None:
            yield
            return
        params = self.parameters()
        self.ema.store(params)
        self.ema.copy_to(params)
        try:
            yield
        finally:
            self.ema.restore(params)

    def extra_state(self) -> dict:
        return {"ema": self.ema.state_dict()} if self.ema is not None else {}

    def load_extra_state(self, state: dict) -> None:
        if self.ema is not None and "ema" in state:
            self.ema.load_state_dict(state["ema"])

    def _params(self, components) -> list[nn.Parameter]:
        return [p for c in components if c in self.models for p in self.models[c].parameters() if p.requires_grad]

    def unet_params(self) -> list[nn.Parameter]:
        return self._params([UNET])

    def text_encoder_params(self) -> list[nn.Parameter]:
        return self._params(TEXT_ENCODER_NAMES)

    def parameters(self) -> list[nn.Parameter]:
        return self.unet_params() + self.text_encoder_params()

    def layers(self, component: str) -> dict[str, nn.Module]:
        """Modules that hold trained weights of their own (the start summary counts them)."""
        return {name: m for name, m in self.models[component].named_modules()
                if any(True for _ in m.parameters(recurse=False))}

    def module_counts(self) -> dict[str, int]:
        return {part: len(self.layers(part)) for part in self.models}

    def param_groups(self) -> tuple[list[dict], list[str]]:
        """One optimizer group per trained component, named as the progress events show them."""
        names = [c for c in (UNET, *TEXT_ENCODER_NAMES) if c in self.models]
        return [{"params": self._params([c]), "lr": self.lrs[c]} for c in names], names


def component_lrs(cfg, n_text_encoders: int) -> dict[str, float]:
    """Learning rate per component: unet_lr, then Dreambooth's per-encoder rates, then text_encoder_lr, then
    learning_rate (the first that is set)."""
    o, d = cfg.optimizer, cfg.dreambooth

    def first(*values):
        return next(v for v in values if v is not None)

    from trainer.engine.build import text_encoder_rates

    shared = text_encoder_rates(o, n_text_encoders)  # text_encoder_lr (one, or one per encoder), else learning_rate
    own = (d.learning_rate_te, d.learning_rate_te2)
    lrs = {UNET: first(o.unet_lr, o.learning_rate)}
    for i, name in enumerate(TEXT_ENCODER_NAMES[:n_text_encoders]):
        lrs[name] = first(own[i], shared[i])
    return lrs


def full_set(unet: nn.Module, text_encoders: list, cfg, train_unet: bool, train_text_encoder: bool) -> FullSet:
    """Mark what a Dreambooth run trains: the U-Net (unless text-encoder-only) and each text encoder whose
    learning rate is not 0 (unless U-Net-only). Everything else is frozen."""
    lrs = component_lrs(cfg, len(text_encoders))
    parts = {UNET: unet, **dict(zip(TEXT_ENCODER_NAMES, text_encoders, strict=False))}
    wanted = {c: (train_unet if c == UNET else train_text_encoder) and lrs[c] > 0 for c in parts}
    for name, module in parts.items():
        module.requires_grad_(wanted[name])
    trained = {c: m for c, m in parts.items() if wanted[c]}
    full = FullSet(trained, {c: lrs[c] for c in trained})
    return full


def start_ema(full: FullSet, cfg) -> None:
    """EMA of the trained weights, started once they sit in their training dtype and device."""
    if cfg.dreambooth.ema_decay > 0:
        from diffusers.training_utils import EMAModel

        full.ema = EMAModel(full.parameters(), decay=cfg.dreambooth.ema_decay)


def trains_text_encoder(trainable) -> bool:
    return any(c in trainable.models for c in TEXT_ENCODER_NAMES)


def stop_text_encoder_if_due(models, cfg, global_step: int) -> None:
    """From step `stop_text_encoder_training` on, captions are encoded without gradients (see module doc)."""
    stop = cfg.dreambooth.stop_text_encoder_training
    if stop and global_step >= stop and models.train_text_encoder:
        models.train_text_encoder = False
        for te in models.text_encoders:
            te.eval()
