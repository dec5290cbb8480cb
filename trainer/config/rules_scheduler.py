"""Rules for the learning-rate schedule's own parameters (registered with the others in trainer.config.rules.RULES):
each is read by some schedulers only, as in sd-scripts' get_scheduler_fix, and a few settings leave a scheduler
without the curve its name promises."""

from __future__ import annotations

from trainer.config.errors import Finding, error, warning
from trainer.config.keyvalue import STEP_RULES_EXAMPLE, parse_key_values, step_rules
from trainer.config.kohya_schedule import SHARES
from trainer.config.rules import rule
from trainer.config.schema import TrainConfig, params_by_name

# parameter -> the schedulers that read it (sd-scripts passes num_cycles to the cosine ones and power to polynomial)
READERS = {
    "lr_scheduler_num_cycles": ("cosine_with_restarts", "cosine_with_min_lr", "warmup_stable_decay"),
    "lr_scheduler_power": ("polynomial",),
    "lr_scheduler_min_lr_ratio": ("cosine_with_min_lr", "warmup_stable_decay"),
    "lr_decay_steps": ("warmup_stable_decay",),
    "lr_decay_ratio": ("warmup_stable_decay",),
    "lr_scheduler_timescale": ("inverse_sqrt",),
}


@rule
def _unread_schedule_settings(cfg: TrainConfig) -> list[Finding]:
    """A schedule parameter away from its default beside a scheduler that never reads it (lr_scheduler_type replaces
    every named scheduler)."""
    o, params, out = cfg.optimizer, params_by_name(), []
    used = o.lr_scheduler_type or o.lr_scheduler
    for name, readers in READERS.items():
        default = params[name].default
        if getattr(o, name) == default or used in readers:
            continue
        back = "empty" if default is None else f"at {default}"
        out.append(warning(f"optimizer.{name}", f"is only used by {' and '.join(readers)}, not {used}; set "
                           f"lr_scheduler = {readers[0]} or leave this {back}",
                           f"只对 {'、'.join(readers)} 生效，对 {used} 无效；请把 lr_scheduler 设为 {readers[0]}，"
                           f"或将此项{'留空' if default is None else f'保持为 {default}'}"))
    return out


# The phase each steps field of kohya_schedule.SHARES sets (en, zh)
PHASES = {"lr_warmup_steps": ("warm-up", "预热"), "lr_decay_steps": ("decay", "衰减")}


@rule
def _steps_or_share(cfg: TrainConfig) -> list[Finding]:
    o, out = cfg.optimizer, []
    for steps, share in SHARES.items():
        phase, zh = PHASES[steps]
        if getattr(o, steps) and getattr(o, share):
            out.append(error(f"optimizer.{share}", f"and {steps} both set the {phase}; keep one (set the other to 0)",
                             f"与 {steps} 都在设置{zh}；请只保留一个（另一个设为 0）"))
    return out


@rule
def _schedule_curves(cfg: TrainConfig) -> list[Finding]:
    o = cfg.optimizer
    if o.lr_scheduler_type:
        return []
    if o.lr_scheduler == "warmup_stable_decay" and not o.lr_decay_ratio and not o.lr_decay_steps:
        return [warning("optimizer.lr_decay_steps", "is 0, so warmup_stable_decay never decays: it holds the full "
                        "rate to the end, as constant_with_warmup does; set the decay's steps (or lr_decay_ratio, "
                        "e.g. 0.2 for the last 20 %)", "为 0，warmup_stable_decay 因此从不衰减：它会像 "
                        "constant_with_warmup 一样一直保持完整学习率；请设置衰减步数（或 lr_decay_ratio，如 0.2 即最后 20%）")]
    if o.lr_scheduler == "cosine_with_min_lr" and not o.lr_scheduler_min_lr_ratio:
        return [warning("optimizer.lr_scheduler_min_lr_ratio", "is 0, so cosine_with_min_lr falls to 0 as cosine "
                        "does (sd-scripts refuses it unset); set the lowest rate as a share, e.g. 0.1, or choose "
                        "cosine", "为 0，cosine_with_min_lr 因此会像 cosine 一样降到 0（sd-scripts 不允许不设）；"
                        "请设置最低学习率比例（如 0.1），或改选 cosine")]
    return _piecewise_rules(cfg) if o.lr_scheduler == "piecewise_constant" else []


def _piecewise_rules(cfg: TrainConfig) -> list[Finding]:
    """piecewise_constant's step_rules, read as the engine reads them (trainer.config.keyvalue.step_rules)."""
    field = "optimizer.lr_scheduler_args"
    try:
        parse_key_values(cfg.optimizer.lr_scheduler_args, field)
    except ValueError:
        return []  # not key=value at all: rules_input.scheduler_args_parse names it
    try:
        step_rules(cfg.optimizer.lr_scheduler_args, field)
    except ValueError as exc:
        text = str(exc).split(": ", 1)[1]
        return [error(field, text, f"piecewise_constant 的规则无法读取：{text}（应只有一项，如 "
                                   f"{STEP_RULES_EXAMPLE}：第 100 步前 ×1，第 200 步前 ×0.5，之后 ×0.1）")]
    return []
