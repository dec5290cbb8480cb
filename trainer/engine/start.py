"""Where a run without a saved state starts: step 0, or the later step training.initial_step / initial_epoch name
(sd-scripts' options for going on from an earlier run's LoRA file when its state is gone).

As in sd-scripts, the step and epoch counters start there, max_train_steps still counts from step 0, and
skip_until_initial_step decides whether the starting epoch's batches before that step are left out (else the epoch
trains from its first batch). Unlike sd-scripts, whose schedule restarts at 0 without resume, the learning-rate
schedule is moved to that step, so the rates are the uninterrupted run's. The optimizer's own state (moments, step
counts) is not saved in a LoRA file: it starts afresh, as in sd-scripts; save.resume continues exactly.
"""

from __future__ import annotations

import warnings

from trainer.engine.checkpoint import Progress
from trainer.engine.errors import EngineError


def initial_step(cfg, per_epoch: int) -> int:
    """The optimizer step the run starts after: initial_step wins over initial_epoch (1-based), as in sd-scripts."""
    t = cfg.training
    if t.initial_step is not None:
        return t.initial_step
    if t.initial_epoch is not None:
        return (t.initial_epoch - 1) * per_epoch
    return 0


def start_progress(cfg, per_epoch: int, total: int) -> Progress:
    """The position a run starts at (all zero without initial_step / initial_epoch). `per_epoch`: optimizer steps an
    epoch; `total`: the run's last step."""
    step = initial_step(cfg, per_epoch)
    if step == 0:
        return Progress()
    if step >= total:  # sd-scripts asserts the same: nothing would be left to train
        field = "initial_step" if cfg.training.initial_step is not None else "initial_epoch"
        raise EngineError(f"training.{field}: the run would start at step {step}, but it ends at step {total} "
                          f"({per_epoch} steps an epoch)", "Start earlier, or raise max_train_steps or "
                          "max_train_epochs: both count from step 0.")
    epoch, steps_done = divmod(step, per_epoch)
    # The sampler skips batches, not steps: a step is gradient_accumulation_steps batches.
    batches = steps_done * cfg.training.gradient_accumulation_steps if cfg.training.skip_until_initial_step else 0
    return Progress(global_step=step, epoch=epoch, batches_in_epoch=batches)


def describe(p: Progress) -> str:
    """A status line for a run that starts at `p` (not at step 0)."""
    skipped = f", leaving out its first {p.batches_in_epoch} batches" if p.batches_in_epoch else ""
    return f"starting after step {p.global_step}, in epoch {p.epoch + 1}{skipped} (training.initial_step/initial_epoch)"


def advance_schedule(scheduler, steps: int) -> None:
    """Step a freshly built learning-rate scheduler `steps` times, to where the uninterrupted run had it. Stepping
    (rather than setting its position) gives every scheduler, recursive ones too, exactly the rates it would have."""
    with warnings.catch_warnings():  # torch warns of a scheduler stepped before its optimizer: on purpose here
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
        for _ in range(steps):
            scheduler.step()


def align_step_keys(sampler, p: Progress, per_epoch: int, accumulation: int) -> None:
    """Tell the batch sampler (trainer.data.loader) how far the run's step is ahead of the one its batches' places
    give: a later start without skip_until_initial_step trains its epoch from the first batch at step initial_step,
    and a resume of such a run stays that far ahead. Caption warm-up counts the run's own step."""
    inner = getattr(sampler, "sampler", sampler)  # under distributed.ShardedBatches
    inner.step_offset = p.global_step - (p.epoch * per_epoch + p.batches_in_epoch // accumulation)
