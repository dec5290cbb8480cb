"""Rules about what a config lets a user reach: on a remote server, every path it names stays in the sandbox.

Registered with the other rules (trainer.config.rules.RULES), so check(), the forms and the run queue all
apply them.
"""

from __future__ import annotations

from trainer import sandbox
from trainer.config.errors import Finding, error
from trainer.config.keyvalue import parse_key_values
from trainer.config.rules import rule
from trainer.config.schema import TrainConfig, all_params, get_value

# Fields that also take a Hugging Face id (org/name): such a value is a path only when it exists here or is
# written as one. A hub download goes to the workspace cache, which is inside the sandbox anyway.
HUB_OR_PATH = {"model.base_model", "model.vae"}


def _names_a_path(field: str, value: str) -> bool:
    if field not in HUB_OR_PATH:
        return True
    return sandbox.is_local(value)


@rule
def paths_in_sandbox(cfg: TrainConfig) -> list[Finding]:
    """Every path field (schema widget "path") must resolve under the allowed roots on a remote server."""
    if not sandbox.policy().remote:
        return []
    out = []
    for p in all_params():
        value = get_value(cfg, p.path)
        if p.widget != "path" or not isinstance(value, str) or not value.strip():
            continue
        if not _names_a_path(p.path, value.strip()):
            continue
        try:
            sandbox.allowed(value.strip())  # the finding names the field
        except sandbox.PathNotAllowed as exc:
            out.append(error(p.path, exc.en, exc.zh))
        except ValueError as exc:  # a symlink loop or a NUL byte
            out.append(error(p.path, str(exc), str(exc)))
    return out


@rule
def optimizer_args_parse(cfg: TrainConfig) -> list[Finding]:
    """optimizer_args parse the way the engine parses them (a bad entry fails here, not after model loading)."""
    return _key_value_problems(cfg.optimizer.optimizer_args, "optimizer.optimizer_args", "weight_decay=0.01")


@rule
def scheduler_args_parse(cfg: TrainConfig) -> list[Finding]:
    """lr_scheduler_args belong to an lr_scheduler_type (or hold piecewise_constant's step_rules: checked in
    rules_scheduler) and parse as the engine parses them."""
    o = cfg.optimizer
    if o.lr_scheduler_args and not o.lr_scheduler_type and o.lr_scheduler != "piecewise_constant":
        return [error("optimizer.lr_scheduler_args", "are the arguments of an lr_scheduler_type, which is empty: "
                      "choose the class (e.g. CosineAnnealingLR), or lr_scheduler piecewise_constant for step_rules, "
                      "or clear them", "是 lr_scheduler_type 的参数，而它为空：请选择调度器类（如 CosineAnnealingLR），"
                      "或为 step_rules 选择 lr_scheduler piecewise_constant，或清空参数")]
    return _key_value_problems(o.lr_scheduler_args, "optimizer.lr_scheduler_args", "T_max=1000")


def _key_value_problems(items: list[str], field: str, example: str) -> list[Finding]:
    """key=value entries that do not parse as the engine parses them (trainer.config.keyvalue), as one error."""
    try:
        parse_key_values(items, field)
    except ValueError as exc:
        text = str(exc).split(": ", 1)[1]
        return [error(field, text, f"格式不对：{text}（每项写成 名称=值，例如 {example}）")]
    return []


@rule
def sample_prompts_in_range(cfg: TrainConfig) -> list[Finding]:
    """Every sample prompt line parses, and its size, steps and CFG are within what a preview can draw."""
    from trainer.engine.prompts import parse_prompts, prompt_problems  # plain Python, no torch

    sm = cfg.sampling
    try:
        prompts = parse_prompts(sm.sample_prompts, negative="", width=512, height=512, seed=0,
                                steps=sm.sample_steps, cfg=sm.sample_cfg)
    except ValueError as exc:
        text = str(exc).split(": ", 1)[-1]
        return [error("sampling.sample_prompts", text, f"无法解析：{text}")]
    out = []
    for p in prompts:
        for problem in prompt_problems(p):
            out.append(error("sampling.sample_prompts", f"'{p.prompt[:40]}': {problem}",
                             f"'{p.prompt[:40]}'：{problem}（超出允许范围）"))
    return out
