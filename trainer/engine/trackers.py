"""Where a run's curves and preview images go besides events.jsonl (logging.log_with): TensorBoard, Weights &
Biases (wandb, an optional dependency), both ("all") or neither. Every tracker takes TensorBoard's
SummaryWriter calls (add_scalar, add_image, close), so the reporter writes each value once.

wandb reads its own settings from the environment: `wandb login` (or WANDB_API_KEY) for the cloud,
WANDB_MODE=offline to keep the run in <dir>/wandb/ for a later `wandb sync`.
"""

from __future__ import annotations

from pathlib import Path

import tomli_w

from trainer.config import TrainConfig, all_params
from trainer.config.schema import to_nested

# Settings that hold where the user's files are (or text that may: custom_toml), kept off trackers, a cloud one
# included, as sd-scripts' log_config keeps its path arguments off.
PRIVATE = frozenset({p.path for p in all_params() if p.widget == "path"} | {"network.base_weights", "other.custom_toml"})


def logged_config(cfg: TrainConfig) -> dict | None:
    """The settings the trackers get (logging.log_config), by group, without PRIVATE ones; None when off."""
    if not cfg.logging.log_config:
        return None
    nested = to_nested(cfg)
    return {group: {name: value for name, value in table.items() if f"{group}.{name}" not in PRIVATE}
            for group, table in nested.items() if isinstance(table, dict)}


def config_text(cfg: TrainConfig) -> str | None:
    """logged_config as TOML in a Markdown code block, for TensorBoard's Text tab; None when off."""
    config = logged_config(cfg)
    if config is None:
        return None
    tables = {group: {name: value for name, value in table.items() if value is not None}  # TOML has no None
              for group, table in config.items()}
    return "```toml\n" + tomli_w.dumps(tables) + "```"


def wandb_settings(cfg: TrainConfig, run_dir: Path) -> dict | None:
    """wandb.init's arguments for this run, or None when log_with does not name wandb. As sd-scripts:
    the project is log_tracker_name, else the training script's name."""
    lg = cfg.logging
    if lg.log_with not in ("wandb", "all"):
        return None
    project = lg.log_tracker_name or ("dreambooth" if cfg.model.training_type == "dreambooth" else "network_train")
    return {"project": project, "name": lg.log_prefix + Path(run_dir).name,
            "dir": str(Path(lg.logging_dir) if lg.logging_dir else Path(run_dir)), "config": logged_config(cfg)}


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
