"""Optimizers and learning-rate schedulers, each taken from the library that maintains it."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

import torch

from trainer.config.keyvalue import parse_key_values, step_rules

# name -> (module, class, default keyword arguments). sd-scripts' names, so imported configs keep working.
OPTIMIZERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "AdamW": ("torch.optim", "AdamW", {}),
    "AdamW8bit": ("bitsandbytes.optim", "AdamW8bit", {}),
    "PagedAdamW8bit": ("bitsandbytes.optim", "PagedAdamW8bit", {}),
    "RAdamScheduleFree": ("schedulefree", "RAdamScheduleFree", {}),
    "AdamWScheduleFree": ("schedulefree", "AdamWScheduleFree", {}),
    "SGDScheduleFree": ("schedulefree", "SGDScheduleFree", {}),
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


# The schedules diffusers lacks, taken from transformers as sd-scripts takes them.
TRANSFORMERS_SCHEDULES = ("cosine_with_min_lr", "warmup_stable_decay", "inverse_sqrt")


def make_scheduler(name: str, optimizer, *, warmup_steps: int, total_steps: int, num_cycles: int, power: float,
                   custom: tuple[str, list[str]] = ("", []), min_lr_ratio: float = 0.0, decay_steps: int = 0,
                   timescale: int | None = None):
    """The learning-rate schedule `name`, or `custom` = (a torch.optim.lr_scheduler class, its key=value arguments:
    lr_scheduler_type / lr_scheduler_args, the schema's list of classes) when it names one. piecewise_constant reads
    its step_rules from custom's arguments; min_lr_ratio, decay_steps and timescale are the transformers schedules'."""
    if custom[0]:
        try:
            kwargs = parse_key_values(custom[1], "optimizer.lr_scheduler_args")
            return getattr(torch.optim.lr_scheduler, custom[0])(optimizer, **kwargs)
        except (TypeError, ValueError) as exc:
            raise OptimizerArgError(f"optimizer.lr_scheduler_args do not fit {custom[0]}: {exc}") from None
    if name == "adafactor":
        from transformers.optimization import AdafactorSchedule

        return AdafactorSchedule(optimizer, initial_lr=optimizer.param_groups[0]["lr"])
    if name in TRANSFORMERS_SCHEDULES:
        from transformers.optimization import get_scheduler as transformers_scheduler

        return transformers_scheduler(name, optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps,
                                      scheduler_specific_kwargs=_transformers_kwargs(
                                          name, num_cycles, min_lr_ratio, decay_steps, timescale))
    from diffusers.optimization import get_scheduler

    return get_scheduler(name, optimizer, step_rules=_piecewise_rules(name, custom[1]), num_warmup_steps=warmup_steps,
                         num_training_steps=total_steps, num_cycles=num_cycles, power=power)


def _transformers_kwargs(name: str, num_cycles: int, min_lr_ratio: float, decay_steps: int,
                         timescale: int | None) -> dict[str, Any]:
    """A transformers schedule's own arguments as sd-scripts passes them: its lr_scheduler_num_cycles counts half
    waves there (1: one fall), so it is halved; timescale None is the warm-up (10000 without one)."""
    if name == "inverse_sqrt":
        return {"timescale": timescale}
    if name == "cosine_with_min_lr":
        return {"num_cycles": num_cycles / 2, "min_lr_rate": min_lr_ratio}
    return {"num_cycles": num_cycles / 2, "min_lr_ratio": min_lr_ratio, "num_decay_steps": decay_steps}


def _piecewise_rules(name: str, args: list[str]) -> str | None:
    """piecewise_constant's step_rules from lr_scheduler_args (None for every other schedule)."""
    if name != "piecewise_constant":
        return None
    try:
        return step_rules(args, "optimizer.lr_scheduler_args")
    except ValueError as exc:
        raise OptimizerArgError(str(exc)) from None


def optimizer_description(name: str, args: Iterable[str] = ()) -> str:
    """sd-scripts' `ss_optimizer` form: the class's full path, then its keyword arguments in brackets, e.g.
    `torch.optim.adamw.AdamW(weight_decay=0.01)`."""
    module, cls_name, defaults = OPTIMIZERS[name]
    cls = getattr(importlib.import_module(module), cls_name)
    kwargs = {**defaults, **parse_optimizer_args(args)}
    listed = ",".join(f"{k}={v}" for k, v in kwargs.items())
    return f"{cls.__module__}.{cls.__name__}" + (f"({listed})" if listed else "")
