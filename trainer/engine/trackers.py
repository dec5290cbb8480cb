"""Where a run's curves and preview images go besides events.jsonl (logging.log_with): TensorBoard, Weights &
Biases (wandb, an optional dependency), both ("all") or neither. Every tracker takes TensorBoard's
SummaryWriter calls (add_scalar, add_image, close), so the reporter writes each value once.

wandb reads its own settings from the environment: `wandb login` (or WANDB_API_KEY) for the cloud,
WANDB_MODE=offline to keep the run in <dir>/wandb/ for a later `wandb sync`.
"""

from __future__ import annotations

from pathlib import Path

from trainer.config import TrainConfig
from trainer.config.schema import to_nested


def wandb_settings(cfg: TrainConfig, run_dir: Path) -> dict | None:
    """wandb.init's arguments for this run, or None when log_with does not name wandb. As sd-scripts:
    the project is log_tracker_name, else the training script's name."""
    lg = cfg.logging
    if lg.log_with not in ("wandb", "all"):
        return None
    project = lg.log_tracker_name or ("dreambooth" if cfg.model.training_type == "dreambooth" else "network_train")
    return {"project": project, "name": lg.log_prefix + Path(run_dir).name,
            "dir": str(Path(lg.logging_dir) if lg.logging_dir else Path(run_dir)), "config": to_nested(cfg)}


class WandbCurves:
    def __init__(self, init: dict):
        import wandb

        self._wandb = wandb
        self.run = wandb.init(**init)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.run.log({tag: value}, step=step)

    def add_image(self, tag: str, image, step: int, dataformats: str = "HWC") -> None:
        self.run.log({tag: self._wandb.Image(image)}, step=step)

    def close(self) -> None:
        self.run.finish()


class Fanout:
    """Several trackers as one."""

    def __init__(self, trackers: list):
        self.trackers = trackers

    def add_scalar(self, *args, **kwargs) -> None:
        for t in self.trackers:
            t.add_scalar(*args, **kwargs)

    def add_image(self, *args, **kwargs) -> None:
        for t in self.trackers:
            t.add_image(*args, **kwargs)

    def close(self) -> None:
        for t in self.trackers:
            t.close()
