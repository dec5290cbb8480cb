"""Optimizers and learning-rate schedulers, each taken from the library that maintains it."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

import torch

from trainer.config.keyvalue import parse_key_values

# name -> (module, class, default keyword arguments). sd-scripts' names, so imported configs keep working.
OPTIMIZERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "AdamW": ("torch.optim", "AdamW", {}),
    "AdamW8bit": ("bitsandbytes.optim", "AdamW8bit", {}),
    "PagedAdamW8bit": ("bitsandbytes.optim", "PagedAdamW8bit", {}),
    "RAdamScheduleFree": ("schedulefree", "RAdamScheduleFree", {}),
    "Lion": ("pytorch_optimizer", "Lion", {}),
    "Lion8bit": ("bitsandbytes.optim", "Lion8bit", {}),
    "PagedLion8bit": ("bitsandbytes.optim", "PagedLion8bit", {}),
    "SGDNesterov": ("torch.optim", "SGD", {"momentum": 0.9, "nesterov": True}),
    "SGDNesterov8bit": ("bitsandbytes.optim", "SGD8bit", {"momentum": 0.9, "nesterov": True}),
    "DAdaptation": ("dadaptation", "DAdaptAdam", {}),
    "DAdaptAdam": ("dadaptation", "DAdaptAdam", {}),
    "DAdaptAdaGrad": ("dadaptation", "DAdaptAdaGrad", {}),
    "DAdaptAdan": ("dadaptation", "DAdaptAdan", {}),
    "DAdaptLion": ("dadaptation", "DAdaptLion", {}),
    "DAdaptSGD": ("dadaptation", "DAdaptSGD", {}),
    # Fixed step size like sd-scripts; relative_step=True can be passed in optimizer_args.
    "AdaFactor": ("transformers.optimization", "Adafactor",
                  {"scale_parameter": False, "relative_step": False, "warmup_init": False}),
    "Prodigy": ("prodigyopt", "Prodigy", {}),
    "ProdigyPlusScheduleFree": ("prodigyplus", "ProdigyPlusScheduleFree", {}),
    "CAME": ("pytorch_optimizer", "CAME", {}),
}


class OptimizerArgError(ValueError):
    pass


def parse_optimizer_args(items: Iterable[str]) -> dict[str, Any]:
    """["weight_decay=0.01", "betas=0.9,0.99"] -> {"weight_decay": 0.01, "betas": (0.9, 0.99)}."""
    try:
        return parse_key_values(items, "optimizer.optimizer_args")  # the same rule `check` applies
    except ValueError as exc:
        raise OptimizerArgError(str(exc)) from None


def make_optimizer(name: str, param_groups: list[dict], lr: float, args: Iterable[str] = (), *,
                   fused: bool = False) -> torch.optim.Optimizer:
    """Build optimizer `name` over `param_groups` (each may carry its own "lr"). `fused` (speed.fused_optimizer)
    picks the class's fused implementation, else its foreach one, where it has them."""
    module, cls_name, defaults = OPTIMIZERS[name]
    cls = getattr(importlib.import_module(module), cls_name)
    kwargs = {**defaults, **parse_optimizer_args(args)}
    if fused:
        from trainer.engine.speed import optimizer_impl

        kwargs.update(optimizer_impl(cls, kwargs))
    try:
        return cls(param_groups, lr=lr, **kwargs)
    except TypeError as exc:
        raise OptimizerArgError(f"optimizer.optimizer_args: {name} rejected {sorted(kwargs)}: {exc}") from None


def set_train_mode(optimizer: torch.optim.Optimizer, training: bool) -> None:
    """Schedule-free optimizers keep two weight sequences; they must be told when we evaluate or save."""
    method = getattr(optimizer, "train" if training else "eval", None)
    if callable(method):
        method()


def make_scheduler(name: str, optimizer, *, warmup_steps: int, total_steps: int, num_cycles: int, power: float,
                   custom: tuple[str, list[str]] = ("", [])):
    """The learning-rate schedule `name`, or `custom` = (a torch.optim.lr_scheduler class, its key=value arguments:
    lr_scheduler_type / lr_scheduler_args, the schema's list of classes) when it names one."""
    if custom[0]:
        try:
            kwargs = parse_key_values(custom[1], "optimizer.lr_scheduler_args")
            return getattr(torch.optim.lr_scheduler, custom[0])(optimizer, **kwargs)
        except (TypeError, ValueError) as exc:
            raise OptimizerArgError(f"optimizer.lr_scheduler_args do not fit {custom[0]}: {exc}") from None
    if name == "adafactor":
        from transformers.optimization import AdafactorSchedule

        return AdafactorSchedule(optimizer, initial_lr=optimizer.param_groups[0]["lr"])
    from diffusers.optimization import get_scheduler

    return get_scheduler(name, optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps,
                         num_cycles=num_cycles, power=power)


def optimizer_description(name: str, args: Iterable[str] = ()) -> str:
    """sd-scripts' `ss_optimizer` form: the class's full path, then its keyword arguments in brackets, e.g.
    `torch.optim.adamw.AdamW(weight_decay=0.01)`."""
    module, cls_name, defaults = OPTIMIZERS[name]
    cls = getattr(importlib.import_module(module), cls_name)
    kwargs = {**defaults, **parse_optimizer_args(args)}
    listed = ",".join(f"{k}={v}" for k, v in kwargs.items())
    return f"{cls.__module__}.{cls.__name__}" + (f"({listed})" if listed else "")
