"""Decode images in worker threads while onnxruntime runs the previous batch.

PIL's decoders and resizers and onnxruntime's `run` all release the GIL, so threads are enough to keep
the model busy. Files are decoded a few batches ahead; a file that fails to decode is reported with its
error and left out of the batch.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainer.tagger.preprocess import load_preprocessed
from trainer.tagger.session import TaggerModel

DECODE_NICENESS = 10


@dataclass
class Result:
    path: Path
    probs: np.ndarray | None  # None when the image could not be read
    error: str = ""


def _lower_priority() -> None:
    # Decoding is a few percent of the work; at normal priority it preempts onnxruntime's threads, and
    # one stalled thread stalls the whole parallel matmul. Nice the decoders so inference comes first
    # (Linux applies setpriority to a thread id; elsewhere this is a no-op).
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), DECODE_NICENESS)
    except (AttributeError, OSError):
        pass


def usable_cpus() -> int:
    # Affinity (taskset, container CPU sets) limits the cores we may use; cpu_count() ignores it.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 2


def default_workers() -> int:
    return max(1, min(4, usable_cpus()))  # niced, so they only take time inference leaves


def effective_batch(model: TaggerModel, batch_size: int) -> int:
    """The model's fixed batch when its export has one, else what was asked for."""
    return model.fixed_batch or max(1, int(batch_size))


def predict_files(
    model: TaggerModel, paths: Iterable[Path], batch_size: int = 8, workers: int | None = None
) -> Iterator[Result]:
    """Yield one Result per path: probabilities, or the error that kept the file from being read."""
    batch = effective_batch(model, batch_size)
    workers = workers or default_workers()
    ahead = 2 * batch + workers  # enough decoded work to cover one inference call
    pending: deque[tuple[Path, Future]] = deque()
    ready: list[tuple[Path, np.ndarray]] = []
    todo = iter(paths)
    with ThreadPoolExecutor(workers, "tagger-decode", initializer=_lower_priority) as pool:

        def refill() -> None:
            while len(pending) < ahead:
                path = next(todo, None)
                if path is None:
                    return
                pending.append((path, pool.submit(load_preprocessed, path, model.size)))

        refill()
        while pending:
            path, future = pending.popleft()
            refill()
            try:
                ready.append((path, future.result()))
            except Exception as exc:  # noqa: BLE001 - any decoder error means "skip this file"
                yield Result(path, None, f"{type(exc).__name__}: {exc}")
                continue
            if len(ready) == batch:
                yield from _infer(model, ready, batch)
                ready = []
        if ready:
            yield from _infer(model, ready, batch)


def _infer(model: TaggerModel, items: list[tuple[Path, np.ndarray]], batch: int) -> Iterator[Result]:
    arrays = np.stack([array for _, array in items])
    if model.fixed_batch and len(items) < batch:
        # A fixed-batch export needs exactly `batch` rows; pad with white and drop the extra outputs.
        pad = np.full((batch - len(items), *arrays.shape[1:]), 255.0, dtype=np.float32)
        arrays = np.concatenate([arrays, pad])
    probs = model.run(arrays)
    for (path, _), row in zip(items, probs, strict=False):
        yield Result(path, row)


@dataclass
class Progress:
    done: int
    total: int
    started: float  # time.perf_counter() when work began

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def images_per_s(self) -> float:
        return self.done / self.elapsed if self.done and self.elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.images_per_s
        return (self.total - self.done) / rate if rate else None


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
