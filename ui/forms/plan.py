"""What a run will do before it starts: images found, repeats, steps per epoch and in total.

Counts come from trainer.data (the same scan and buckets the engine uses), so the numbers shown are the
ones the run will report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from trainer import sandbox
from trainer.config import TrainConfig, parse_resolution
from trainer.data.buckets import plan_buckets, steps_per_epoch
from trainer.data.problems import DatasetError
from trainer.data.scan import count_images, scan_dataset


@dataclass
class Plan:
    ok: bool
    images: int = 0
    repeated: int = 0  # images x repeats: one epoch's worth
    steps_per_epoch: int = 0  # optimizer steps (after gradient accumulation)
    total_steps: int = 0
    subsets: list[tuple[str, int, int]] = field(default_factory=list)  # (folder, images, repeats)
    problems: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)  # of the training images, in the scan's order
    error: str = ""  # why the dataset cannot be used


def plan_run(cfg: TrainConfig) -> Plan:
    """Scan cfg's dataset and count the steps; Plan(ok=False, error=...) when the dataset is unusable."""
    d = cfg.dataset
    try:
        for folder in filter(None, (d.train_data_dir, d.reg_data_dir)):
            sandbox.allowed(folder, "dataset")
        scan = scan_dataset(d.train_data_dir, caption_extension=cfg.caption.caption_extension,
                            reg_dir=d.reg_data_dir or None)
    except (DatasetError, OSError, ValueError) as exc:  # ValueError: sandbox.PathNotAllowed
        return Plan(ok=False, error=str(exc))
    items = scan.items  # regularisation images are batched alongside, as in the engine
    buckets = plan_buckets(items, resolution=parse_resolution(d.resolution), min_reso=d.min_bucket_reso,
                           max_reso=d.max_bucket_reso, step=d.bucket_reso_steps, enable_bucket=d.enable_bucket,
                           no_upscale=d.bucket_no_upscale)
    batches = steps_per_epoch([buckets[i] for i in range(len(items))], [it.repeats for it in items],
                              cfg.training.train_batch_size)
    per_epoch = math.ceil(batches / cfg.training.gradient_accumulation_steps)
    counts = count_images(scan)
    total = cfg.training.max_train_steps or per_epoch * cfg.training.max_train_epochs
    return Plan(ok=True, images=counts.train_images, repeated=counts.train_repeated, steps_per_epoch=per_epoch,
                total_steps=total, subsets=_subsets(scan.train_items),
                problems=[str(p) for p in scan.problems if p.level == "warning"],
                captions=[it.caption for it in scan.train_items])


def _subsets(items) -> list[tuple[str, int, int]]:
    seen: dict[str, list[int]] = {}
    for it in items:
        seen.setdefault(it.subset, [0, it.repeats])[0] += 1
    return [(name, n, repeats) for name, (n, repeats) in seen.items()]
