"""Tag a whole folder: list images, predict, build each caption, write it (with backups), report progress."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from trainer.tagger.pipeline import Progress, predict_files
from trainer.tagger.postprocess import TagOptions, ordered_tags, predict
from trainer.tagger.preprocess import list_images
from trainer.tagger.session import TaggerModel
from trainer.tagger.writer import ACTIONS, BackupFolder, caption_path, normalise_extension, write_caption


@dataclass
class TagJob:
    folder: Path
    options: TagOptions = field(default_factory=TagOptions)
    existing: str = "skip"  # skip | overwrite | append | prepend
    extension: str = ".txt"
    recursive: bool = False
    backup_dir: Path | None = None  # None: no backups (the user turned them off)
    batch_size: int = 8
    workers: int | None = None


@dataclass
class JobReport:
    """Running totals; the generator yields the same object after every image."""

    progress: Progress
    written: int = 0
    unchanged: int = 0
    skipped: int = 0  # already captioned and the action is "skip"
    failed: list[tuple[Path, str]] = field(default_factory=list)
    backup_dir: Path | None = None
    last: Path | None = None
    finished: bool = False


def backup_folder_for(base: Path, images: Path) -> Path:
    """A fresh folder for this run's caption backups: <base>/<image folder name>-<timestamp>."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(base) / f"{Path(images).resolve().name}-{stamp}"


def tag_folder(model: TaggerModel, job: TagJob) -> Iterator[JobReport]:
    """Run `job`, yielding the report after each image and once more, finished, at the end."""
    if job.existing not in ACTIONS:
        raise ValueError(f"existing-caption action '{job.existing}' is unknown; choose one of {', '.join(ACTIONS)}")
    ext = normalise_extension(job.extension)
    root = Path(job.folder).expanduser()
    images = list_images(root, job.recursive, exclude=job.backup_dir)
    todo = [p for p in images if job.existing != "skip" or not caption_path(p, ext).exists()]
    report = JobReport(Progress(0, len(todo), time.perf_counter()), skipped=len(images) - len(todo))
    backup = BackupFolder(root, job.backup_dir) if job.backup_dir else None
    for result in predict_files(model, todo, job.batch_size, job.workers):
        report.last = result.path
        if result.probs is None:
            report.failed.append((result.path, result.error))
        else:
            _write_one(model, job, result.path, result.probs, ext, backup, report)
        report.progress.done += 1
        yield report
    if backup is not None and job.backup_dir.exists():
        report.backup_dir = job.backup_dir
    report.finished = True
    yield report


def _write_one(model, job: TagJob, path: Path, probs: np.ndarray, ext: str, backup, report: JobReport) -> None:
    tags = ordered_tags(predict(probs, model.labels, job.options), job.options)
    try:
        outcome = write_caption(path, tags, job.existing, ext, backup, job.options.always_first)
    except (OSError, ValueError) as exc:  # read-only, full disk, a symlinked caption: report, keep going
        report.failed.append((path, f"writing caption: {exc}"))
        return
    if outcome == "written":
        report.written += 1
    elif outcome == "unchanged":
        report.unchanged += 1
    else:
        report.skipped += 1


def tag_image(model: TaggerModel, path: str | Path, options: TagOptions):
    """(Prediction, caption tags) for one image, for a preview before a folder run."""
    result = next(predict_files(model, [Path(path)], batch_size=1, workers=1))
    if result.probs is None:
        raise ValueError(f"cannot read image '{path}': {result.error}")
    pred = predict(result.probs, model.labels, options)
    return pred, ordered_tags(pred, options)
