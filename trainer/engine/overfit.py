"""Reading the validation curve: overfitting (validation loss rising while training loss falls) and
underfitting (nothing has moved after a good part of the run). Pure logic over the evaluations so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

UNDERFIT_AT = 0.5  # share of the run after which an unmoved validation loss is pointed out
UNMOVED = 0.01  # relative change of the validation loss below which it "has not moved"


@dataclass
class Evaluation:
    step: int
    epoch: int  # epochs completed when it was measured
    loss: float  # validation loss
    train_loss: float  # the training loss's moving average at that moment
    path: str | None = None  # the LoRA file holding exactly these weights, when one was saved


@dataclass
class FitWatch:
    patience: int  # K: rises in a row that count as overfitting
    total_steps: int
    history: list[Evaluation] = field(default_factory=list)
    overfit_reported_for: int = -1  # index of the best evaluation the last overfitting warning named
    underfit_reported: bool = False

    @property
    def best(self) -> Evaluation:
        return min(self.history, key=lambda e: e.loss)

    def add(self, ev: Evaluation) -> list[str]:
        """Record an evaluation; returns the signals it raises: "overfit", "underfit" (each at most once per
        best evaluation / run)."""
        self.history.append(ev)
        return [s for s, fired in (("overfit", self._overfit()), ("underfit", self._underfit())) if fired]

    def _overfit(self) -> bool:
        k = self.patience
        if len(self.history) < k + 1:
            return False
        window = self.history[-(k + 1):]
        rising = all(b.loss > a.loss for a, b in zip(window, window[1:], strict=False))
        train_falling = window[-1].train_loss < window[0].train_loss
        best = self.history.index(self.best)
        if rising and train_falling and best != self.overfit_reported_for:
            self.overfit_reported_for = best
            return True
        return False

    def _underfit(self) -> bool:
        if self.underfit_reported or len(self.history) < 2 or self.history[-1].step < UNDERFIT_AT * self.total_steps:
            return False
        first = self.history[0].loss  # "not moved": no evaluation since came clearly below the first
        self.underfit_reported = first - self.best.loss <= UNMOVED * abs(first)
        return self.underfit_reported


def best_name(ev: Evaluation) -> str:
    return Path(ev.path).name if ev.path else f"epoch {ev.epoch}, step {ev.step} (no file was saved then)"


def overfit_message(watch: FitWatch, early_stop: bool) -> tuple[str, str, str]:
    """(English, Chinese, hint) for the overfitting warning, naming the file with the lowest validation loss."""
    b, k = watch.best, watch.patience
    name = best_name(b)
    en = (f"Overfitting: the validation loss rose {k} times in a row while the training loss fell. The best "
          f"weights so far are {name} (epoch {b.epoch}, validation loss {b.loss:.4f}).")
    zh = (f"过拟合：训练损失在下降，验证损失却连续上升了 {k} 次。目前最好的权重是 {name}"
          f"（第 {b.epoch} 轮，验证损失 {b.loss:.4f}）。")
    if early_stop:
        en += " The run stops early; the final file holds those weights."
        zh += "训练提前结束；最终文件保存的就是这组权重。"
        hint = ""
    else:
        hint = ("Use that file, or train again with fewer epochs, a lower learning rate or more images; "
                "validation.early_stop ends the run here by itself.")
    return en, zh, hint


def underfit_message(watch: FitWatch) -> tuple[str, str, str]:
    first, last, best = watch.history[0], watch.history[-1], watch.best
    en = (f"Underfitting: after {last.step} of {watch.total_steps} steps the validation loss has barely moved "
          f"(first {first.loss:.4f}, lowest {best.loss:.4f}): the LoRA is learning little.")
    zh = (f"欠拟合：已训练 {last.step}/{watch.total_steps} 步，验证损失几乎没有变化"
          f"（最初 {first.loss:.4f}，最低 {best.loss:.4f}）：LoRA 学到的东西很少。")
    return en, zh, "Raise the learning rate or network_dim, or train for more epochs."
