"""Where an engine step's time goes: torch.profiler over steady-state steps of a real `trainer.engine` run,
with the engine's phases labelled from outside (record_function wrappers installed for the run, then removed),
so the engine itself carries no profiling code.

Used by `bench/engine_overhead.py --profile`. Rows nest (indented): a row's time includes its children's.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
from pathlib import Path

from torch.profiler import ProfilerActivity, profile, record_function, schedule

PREFIX = "danlu:"

# (label, depth, what it covers), in table order. The labels are applied in `_labels` below.
ROWS = [
    ("data", 0, "the loader: next batch (cached latents, captions)"),
    ("loss", 0, "forward: noise, timesteps, text encoder, U-Net, loss"),
    ("text encoder fwd", 1, "tokenize + text encoder(s) forward"),
    ("unet fwd", 1, "U-Net forward"),
    ("adapter layers fwd", 2, "peft LoRA layers' forward, base layer included"),
    ("base in adapters", 3, "the frozen base layer inside them"),
    ("backward", 0, "accelerator.backward"),
    ("grad norms", 0, "per-group gradient norms for the logs"),
    ("clip grad", 0, "clip_grad_norm_"),
    ("optimizer", 0, "optimizer.step + zero_grad"),
    ("lr scheduler", 0, "scheduler.step"),
    ("loss read-back", 0, "losses and gradient norms copied to the host and checked (speed.loss_read_every_n_steps)"),
    ("reporting", 1, "progress event, TensorBoard scalars, log and console line"),
    ("after step", 0, "save/sample/validation checks and the stop request"),
]


def _wrap(obj, name: str, label: str, undo: list) -> None:
    """Replace obj.name by a wrapper that runs it inside record_function(label); `undo` restores it."""
    original = getattr(obj, name)
    had_own = name in vars(obj) if not isinstance(obj, type) else True

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        with record_function(PREFIX + label):
            return original(*args, **kwargs)

    setattr(obj, name, wrapper)
    undo.append(lambda: setattr(obj, name, original) if had_own else delattr(obj, name))


def _label_adapters(models: dict, undo: list) -> None:
    from peft.tuners.lora import LoraLayer

    for model in models.values():
        for module in model.modules():
            if isinstance(module, LoraLayer):
                _wrap(module, "forward", "adapter layers fwd", undo)
                _wrap(module.base_layer, "forward", "base in adapters", undo)


@contextlib.contextmanager
def _labels(on_step):
    """Label the engine's phases for the profiler; `on_step` runs as each optimizer step ends."""
    from accelerate import Accelerator
    from accelerate.optimizer import AcceleratedOptimizer
    from accelerate.scheduler import AcceleratedScheduler
    from torch.utils.data.dataloader import _BaseDataLoaderIter

    from trainer.engine import loop, session
    from trainer.engine.reporter import Reporter
    from trainer.families.base import Family

    undo: list = []
    targets = [(_BaseDataLoaderIter, "__next__", "data"), (loop.StepRunner, "loss", "loss"),
               (loop.StepRunner, "_conditioning", "text encoder fwd"), (Family, "predict", "unet fwd"),
               (Accelerator, "backward", "backward"), (loop, "grad_norm_tensors", "grad norms"),
               (Accelerator, "clip_grad_norm_", "clip grad"), (AcceleratedOptimizer, "step", "optimizer"),
               (AcceleratedOptimizer, "zero_grad", "optimizer"), (AcceleratedScheduler, "step", "lr scheduler"),
               (session.Session, "read_losses", "loss read-back"), (Reporter, "progress", "reporting"),
               (session.Session, "_after_step", "after step"),
               (session.Session, "_stop_wanted", "after step")]
    for obj, name, label in targets:
        _wrap(obj, name, label, undo)
    # The adapters exist once the run has built its models: label them at the first step.
    original_step = loop.StepRunner.step

    def step(self, batch, global_step, sync):
        if not getattr(self, "_danlu_labelled", False):
            _label_adapters(self.m.lora.models, undo)
            self._danlu_labelled = True
        return original_step(self, batch, global_step, sync)

    loop.StepRunner.step = step
    undo.append(lambda: setattr(loop.StepRunner, "step", original_step))
    try:
        with after_each_step(on_step):
            yield
    finally:
        for fn in reversed(undo):
            fn()


@contextlib.contextmanager
def after_each_step(on_step):
    """Call on_step() where the engine's session marks an optimizer step finished, for this block only (events
    carry wall time alone, and with speed.loss_read_every_n_steps > 1 they are written N at a time)."""
    from trainer.engine.readback import LossReadback

    original = LossReadback.finish_step

    def finish_step(self, **report):
        original(self, **report)
        on_step()

    LossReadback.finish_step = finish_step
    try:
        yield
    finally:
        LossReadback.finish_step = original


def profile_engine(cfg, run_dir: Path, skip: int = 10) -> dict:
    """Profile steps skip+1 .. total-1 of an engine run of `cfg`; returns {"rows": [...], "text": table}."""
    from trainer.engine.run import train
    from trainer.events import read_events

    total = cfg.training.max_train_steps
    active = max(1, total - skip - 2)
    prof = profile(activities=[ProfilerActivity.CPU], schedule=schedule(wait=skip, warmup=1, active=active, repeat=1))
    with _labels(prof.step), prof:
        if train(cfg, run_dir) != 0:
            raise RuntimeError(f"the profiled engine run failed: see {run_dir / 'train.log'}")
    times = [e["time"] for e in read_events(run_dir)[0] if e["type"] == "progress"]  # when each step ended
    window = times[skip + 1: skip + 2 + active]
    step_ms = statistics.median([b - a for a, b in zip(window, window[1:], strict=False)]) * 1e3
    found = {e.key[len(PREFIX):]: e.cpu_time_total / 1e3 / active
             for e in prof.key_averages() if e.key.startswith(PREFIX)}
    rows = [{"label": label, "depth": depth, "ms": found.get(label, 0.0), "covers": covers}
            for label, depth, covers in ROWS]
    top = sum(r["ms"] for r in rows if r["depth"] == 0)
    adapter = found.get("adapter layers fwd", 0.0) - found.get("base in adapters", 0.0)
    rows.append({"label": "adapter's own fwd", "depth": 2, "ms": adapter,
                 "covers": "adapter layers minus their base layer: the LoRA matmuls, dropout, scale"})
    rows.append({"label": "unlabelled", "depth": 0, "ms": max(0.0, step_ms - top),
                 "covers": "the loop itself and anything not named above (profiled step minus the rows)"})
    lines = [f"profiled engine step (median of {active} steps, profiler on): {step_ms:.1f} ms",
             f"{'phase':<26} {'ms/step':>9} {'share':>7}  covers"]
    for r in rows:
        lines.append(f"{'  ' * r['depth'] + r['label']:<26} {r['ms']:9.2f} {r['ms'] / step_ms:7.1%}  {r['covers']}")
    return {"step_ms": step_ms, "rows": rows, "text": "\n".join(lines)}
