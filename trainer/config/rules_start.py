"""Rules for where a run starts and how often it saves by epoch (registered with the others in
trainer.config.rules.RULES): sd-scripts' initial_step, initial_epoch, skip_until_initial_step and save_n_epoch_ratio.
The engine (trainer/engine/start.py) refuses a start past the end that needs the data's size to see."""

from __future__ import annotations

from trainer.config.errors import Finding, error, warning
from trainer.config.rules import rule
from trainer.config.schema import TrainConfig


def _start_field(cfg: TrainConfig) -> str | None:
    """The field that sets a later start (initial_step wins, as in sd-scripts), or None."""
    t = cfg.training
    return "initial_step" if t.initial_step is not None else "initial_epoch" if t.initial_epoch is not None else None


@rule
def _later_start(cfg: TrainConfig) -> list[Finding]:
    t, field = cfg.training, _start_field(cfg)
    if field is None:
        return [] if not t.skip_until_initial_step else [warning(
            "training.skip_until_initial_step", "does nothing without training.initial_step or initial_epoch "
            "(save.resume always goes on at the batch its state was saved at); set one of them or turn this off",
            "未设置 training.initial_step 或 initial_epoch 时无效（save.resume 总是从其状态保存时的批次继续）；"
            "请设置其中之一，或关闭此项")]
    if cfg.save.resume.strip():  # sd-scripts would load the state, then restart its step count: say which to keep
        return [error(f"training.{field}", "and save.resume are both set: save.resume continues at the step its state "
                      f"was saved at; {field} starts a run without a state at another step. Clear {field} to resume, "
                      "or clear save.resume", f"与 save.resume 同时设置了：save.resume 从其状态保存时的步数继续；{field} "
                      f"用于没有训练状态时从另一步开始。要恢复训练请清空 {field}，否则请清空 save.resume")]
    out = []
    if field == "initial_step" and t.initial_epoch is not None:
        out.append(warning("training.initial_epoch", f"is not used: initial_step ({t.initial_step}) is set and "
                           "wins, as in sd-scripts; clear one of them", f"不起作用：已设置 initial_step（{t.initial_step}），"
                           "它优先，与 sd-scripts 相同；请清空其中之一"))
    if field == "initial_step" and 0 < t.max_train_steps <= t.initial_step:
        out.append(error("training.initial_step", f"({t.initial_step}) must be below max_train_steps "
                         f"({t.max_train_steps}), which counts from step 0: nothing would be left to train; lower it "
                         "or raise max_train_steps", f"（{t.initial_step}）必须小于 max_train_steps（{t.max_train_steps}），"
                         "后者从第 0 步算起：否则没有可训练的步数；请调小它或调大 max_train_steps"))
    if field == "initial_epoch" and not t.max_train_steps and t.initial_epoch > t.max_train_epochs:
        out.append(error("training.initial_epoch", f"({t.initial_epoch}) is past the last epoch "
                         f"(max_train_epochs = {t.max_train_epochs}); lower it or raise max_train_epochs",
                         f"（{t.initial_epoch}）超过了最后一轮（max_train_epochs = {t.max_train_epochs}）；请调小它或调大 "
                         "max_train_epochs"))
    return out


@rule
def _epoch_save_ratio(cfg: TrainConfig) -> list[Finding]:
    s = cfg.save
    if s.save_n_epoch_ratio and s.save_every_n_epochs > 1:  # 1 is Danlu's default, 0 sd-scripts' (unset)
        return [warning("save.save_every_n_epochs", f"({s.save_every_n_epochs}) is not used: save_n_epoch_ratio "
                        f"({s.save_n_epoch_ratio}) sets the epochs between saves, as in sd-scripts; set one of them",
                        f"（{s.save_every_n_epochs}）不起作用：save_n_epoch_ratio（{s.save_n_epoch_ratio}）决定每隔几轮保存，"
                        "与 sd-scripts 相同；请只设置其中之一")]
    return []


def start_differs_from_sd_scripts(values: dict) -> list[Finding]:
    """An imported (or exported) later start trains differently in sd-scripts, on purpose: say how. `values`: the
    flat sd-scripts-named settings."""
    step, epoch = values.get("initial_step"), values.get("initial_epoch")
    field = "initial_step" if step is not None else "initial_epoch"
    if not (step or (epoch or 1) > 1) or values.get("resume"):
        return []
    en = ("Danlu moves the learning-rate schedule to the start step, so the rates are the uninterrupted run's; "
          "sd-scripts starts its schedule at step 0 without resume")
    zh = "丹炉把学习率调度移到起始步，使学习率与未中断的训练相同；sd-scripts 在不 resume 时调度从第 0 步开始"
    if not values.get("skip_until_initial_step"):
        en += "; without skip_until_initial_step it also counts steps (step-save names) from 0, Danlu from the start"
        zh += "；未开启 skip_until_initial_step 时它的步数（按步保存的文件名）也从 0 开始计，丹炉从起始步开始计"
    return [warning(f"training.{field}", en, zh)]
