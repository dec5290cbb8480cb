"""The learning-rate schedule keys whose shape differs between sd-scripts and Danlu, for trainer.config.kohya's import
and export: a share of the run written as a fractional *_steps, the ratio cosine_with_min_lr cannot do without, and
piecewise_constant's step_rules, which sd-scripts evaluates as a Python literal."""

from __future__ import annotations

from typing import Any

from trainer.config.keyvalue import step_rules

# sd-scripts' *_steps key -> Danlu's share of the run: sd-scripts reads a float there as that share
SHARES = {"lr_warmup_steps": "lr_warmup_ratio", "lr_decay_steps": "lr_decay_ratio"}


def import_shares(flat: dict[str, Any]) -> None:
    """A warm-up or decay given as a float below 1 (sd-scripts: a share of the run's steps) moves to Danlu's *_ratio
    key in `flat`."""
    for steps, ratio in SHARES.items():
        value = flat.get(steps)
        if isinstance(value, float) and 0 < value < 1:
            flat[ratio] = flat.pop(steps)


def export_schedule(o, out: dict[str, Any]) -> None:
    """Write optimizer settings `o` into sd-scripts' dict `out` where the keys alone do not say it."""
    for steps, ratio in SHARES.items():
        if getattr(o, ratio) and not getattr(o, steps):
            out[steps] = getattr(o, ratio)
    if o.lr_scheduler_type:
        return
    if o.lr_scheduler == "cosine_with_min_lr":  # a 0 is a value here: sd-scripts refuses this scheduler without it
        out["lr_scheduler_min_lr_ratio"] = o.lr_scheduler_min_lr_ratio
    if o.lr_scheduler == "piecewise_constant":
        try:  # sd-scripts evaluates each value with ast.literal_eval: the rules must be a quoted string
            out["lr_scheduler_args"] = [f"step_rules={step_rules(o.lr_scheduler_args, 'lr_scheduler_args')!r}"]
        except ValueError:
            pass  # check() names it; the entries go out as written
