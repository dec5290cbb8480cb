"""Training in several processes (`accelerate launch`, one per GPU; gloo on CPU for tests).

Every process builds the same global batches (train_batch_size x processes, from the same seeded bucket
sampler) and trains its own rows of each. Noise and timesteps are drawn for the whole global batch on
every process (the RNG streams stay identical) and each takes its rows, and the local loss is scaled so the
averaged gradients are exactly the global batch's: N processes train the same weights as one process with
the N-times batch. Uneven last batches of a bucket split as evenly as they can; a process left without a row
trains a zero-weighted copy of row 0 so the collectives stay in step.

The LoRA's gradients are averaged once per optimizer step (accelerate's reduce), not per backward by a
DDP wrapper: with gradient accumulation that is fewer collectives, and the families' code keeps calling
the plain modules.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from trainer.data.loader import collate_batch


def rows_of(n: int, rank: int, world: int) -> tuple[int, int]:
    """[start, stop) of this rank's rows in a batch of n (numpy.array_split's split)."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class ShardedBatches:
    """Wraps the (resumable) bucket batch sampler: yields this rank's keys of each global batch, each key
    tagged with (start, stop, global size) so the step knows its rows."""

    def __init__(self, sampler, rank: int, world: int):
        self.sampler, self.rank, self.world = sampler, rank, world

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.sampler.set_epoch(epoch, skip_batches)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        for keys in self.sampler:
            start, stop = rows_of(len(keys), self.rank, self.world)
            local = keys[start:stop] or keys[:1]  # the zero-weighted stand-in row
            yield [(key, start, stop, len(keys)) for key in local]


class ShardedDataset(Dataset):
    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, tagged):
        key, start, stop, n = tagged
        return {**self.dataset[key], "shard": (start, stop, n)}


def collate_sharded(samples: list[dict]) -> dict:
    return {**collate_batch(samples), "shard": samples[0]["shard"]}


def global_draw(draw, latents: torch.Tensor, shard) -> torch.Tensor:
    """`draw(like)` for the whole global batch, then this rank's rows (a stand-in row takes row 0's)."""
    start, stop, n = shard
    full = draw(latents.new_empty((n, *latents.shape[1:])))
    return full[start:stop] if stop > start else full[:1]


def shard_scale(shard, world: int) -> float:
    """Local loss = sum of its rows x this: the mean over processes is then the global batch's mean."""
    start, stop, n = shard
    return world / n if stop > start else 0.0


def average_gradients(accelerator, params, bucket: int = 2**25) -> None:
    """Average the trainable parameters' gradients over all processes, a few flat all-reduces of at most
    `bucket` elements each (a LoRA is one; a full fine-tune is not copied whole at once)."""
    params = [p for p in params if p.requires_grad]
    for p in params:
        if p.grad is None:  # a part unused this step on this rank: it still takes part in the reduce
            p.grad = torch.zeros_like(p)
    group: list = []
    size = 0
    for i, p in enumerate(params):
        group.append(p)
        size += p.numel()
        if size >= bucket or i == len(params) - 1:
            flat = accelerator.reduce(torch.cat([q.grad.flatten() for q in group]), "mean")
            offset = 0
            for q in group:
                q.grad.copy_(flat[offset:offset + q.numel()].view_as(q.grad))
                offset += q.numel()
            group, size = [], 0
