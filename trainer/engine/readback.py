"""Losses read back from the device N steps at a time (speed.loss_read_every_n_steps).

Reading a loss as a Python number makes the CPU wait for the GPU to finish the step, so the GPU idles while
the next batch is prepared. Steps instead leave their loss (and gradient norms) on the device; `read()` copies
all of them in one transfer, checks every loss for a blow-up (NaN, inf or huge), and returns the progress
reports in order with their real values. The session reads before every save, preview and validation, so
weights from a blown-up step are never written, and the explosion check never skips a step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from trainer.engine.errors import EngineError

# A diffusion loss sits well below 1; far above it the weights are already ruined ("炸炉").
EXPLODED_LOSS = 1e3


class LossExploded(EngineError):
    pass


@dataclass
class _Pending:
    step: int  # the optimizer step (1-based) the batch belongs to
    loss: torch.Tensor  # 0-dim, on the device
    norms: list[torch.Tensor] = field(default_factory=list)
    report: dict | None = None  # the progress fields of a finished optimizer step (None: a micro-batch)


class LossReadback:
    def __init__(self, every: int, mean=None):
        """`mean`: averages a tensor of losses over the processes of a multi-process run (one collective per
        read, not one per batch)."""
        self.every = max(1, every)
        self.mean = mean
        self._pending: list[_Pending] = []
        self._finished = 0  # optimizer steps among the pending batches
        self.reads = 0  # transfers made (what the setting saves: compare with the steps run)

    def add(self, step: int, loss: torch.Tensor, norms: list[torch.Tensor] | None = None) -> None:
        self._pending.append(_Pending(step, loss.detach().float().reshape(()), list(norms or [])))

    def finish_step(self, **report) -> None:
        """The last added batch ended an optimizer step: `report` is its progress fields, loss aside."""
        self._pending[-1].report = report
        self._finished += 1

    @property
    def due(self) -> bool:
        return self._finished >= self.every

    def read(self) -> list[dict]:
        """Every pending finished step's report with its loss and gradient norms, in one device transfer.
        Raises LossExploded at the first blown-up batch."""
        pending, self._pending, self._finished = self._pending, [], 0
        if not pending:
            return []
        losses = torch.stack([p.loss for p in pending])
        if self.mean is not None:  # each process's own batches: the global batch's loss is their mean
            losses = self.mean(losses)
        norms = [t.to(losses.device).float().reshape(()) for p in pending for t in p.norms]  # the same everywhere
        flat = torch.cat([losses, *([torch.stack(norms)] if norms else [])]).tolist()
        self.reads += 1
        out, i = [], len(pending)
        for p, loss in zip(pending, flat[:len(pending)], strict=True):  # the losses, then the norms
            norms, i = flat[i:i + len(p.norms)], i + len(p.norms)
            if not math.isfinite(loss) or loss > EXPLODED_LOSS:
                raise LossExploded(
                    f"the loss became {loss} at step {p.step}: training blew up (炸炉)",
                    "Lower the learning rate (try half), keep max_grad_norm at 1, use bf16 instead of fp16 or turn "
                    "off full_fp16, and check the dataset for broken images. The last good save is kept.")
            if p.report is not None:
                out.append({**p.report, "loss": loss, "grad_norms": norms})
        return out
