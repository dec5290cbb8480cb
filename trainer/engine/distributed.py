"""Training in several processes (`accelerate launch`, one per GPU; gloo on CPU for tests).

The model: the trained modules go through `accelerator.prepare` as one module whose forward is the batch's
loss (`LossModule`), so under accelerate launch they are wrapped in DistributedDataParallel, which averages
the gradients during backward (overlapping the transfer with the computation) and skips that while
gradients accumulate (`accelerator.no_sync`). Frozen base weights take no part in DDP's start-up broadcast:
every process loaded the same file, so gigabytes need not cross the wire.

The data: NOT accelerate's prepared loader, on purpose. Its sharding assumes one fixed batch size, and our
bucket sampler ends every bucket with a shorter batch: with split_batches accelerate silently drops every
short batch but the last (fewer optimizer steps than the data needs, images never trained), and without it
hands whole bucket batches to processes in turn and pads the end with repeated images (with even_batches),
so the gradient is no longer the global batch's. Instead every process builds the same global batches
(train_batch_size x processes, from the same seeded, resumable bucket sampler) and trains its own rows of
each. Noise and timesteps are drawn for the whole global batch on every process (the RNG streams stay
identical) and each takes its rows, and the local loss is scaled so the averaged gradients are exactly the
global batch's: N processes train the same weights as one process with the N-times batch
(tests/test_engine_multiprocess.py). Uneven last batches of a bucket split as evenly as they can; a process
left without a row trains a zero-weighted copy of row 0 so the collectives stay in step.
"""

from __future__ import annotations

from datetime import timedelta

import torch
from torch.utils.data import Dataset

from trainer.data.loader import collate_batch


def ddp_handlers(s) -> list:
    """The accelerate kwargs handlers of a run's speed settings `s`. Unused parameters are allowed: DyLoRA, module
    dropout or a text encoder that stops training leave some trained weights without a gradient in a step."""
    from accelerate import DistributedDataParallelKwargs, InitProcessGroupKwargs

    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True, static_graph=s.ddp_static_graph,
                                              gradient_as_bucket_view=s.ddp_gradient_as_bucket_view)]
    if s.ddp_timeout:
        handlers.append(InitProcessGroupKwargs(timeout=timedelta(minutes=s.ddp_timeout)))
    return handlers


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


def global_rows(local: torch.Tensor, shard) -> torch.Tensor:
    """`local` (this rank's rows) at their place in a global-batch tensor, zeros elsewhere: what a global draw
    that depends on the data reads (the other ranks' rows are drawn and thrown away here)."""
    start, stop, n = shard
    full = local.new_zeros((n, *local.shape[1:]))
    if stop > start:
        full[start:stop] = local
    else:  # a stand-in row takes row 0's draw (global_draw)
        full[:1] = local[:1]
    return full


def shard_scale(shard, world: int) -> float:
    """Local loss = sum of its rows x this: the mean over processes is then the global batch's mean."""
    start, stop, n = shard
    return world / n if stop > start else 0.0


class LossModule(torch.nn.Module):
    """The modules holding the trained weights, as one module whose forward is `loss(batch)`: DDP hooks the
    gradients of what it wraps and must see the forward that produces them."""

    def __init__(self, trained: dict[str, torch.nn.Module], loss):
        super().__init__()
        self.parts = torch.nn.ModuleDict(trained)
        self._loss = loss

    def forward(self, batch):
        return self._loss(batch)


def prepare_trained(accelerator, trained: dict[str, torch.nn.Module], loss):
    """`LossModule` through accelerate.prepare: under accelerate launch a DDP module (the session allows
    unused parameters: DyLoRA, module dropout and a text encoder that stops training leave some without a
    gradient in a step)."""
    module = LossModule(trained, loss)
    frozen = [name for name, p in module.named_parameters() if not p.requires_grad]
    frozen += [name for name, _ in module.named_buffers()]
    torch.nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, frozen)
    # device_placement off: the modules are where the engine put them (block swap keeps some on the CPU).
    return accelerator.prepare_model(module, device_placement=False)


def host_group():
    """A process group for what the host holds (gloo, on the CPU): agreeing on a host flag through the GPU
    backend (NCCL) makes the host wait for every step its GPU still has queued, each time. None where the
    default group is gloo already. Every process calls this together (it is a collective)."""
    import torch.distributed as dist

    return None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")


def any_process(flag: bool, group) -> bool:
    """`flag` on every process when it is set on any (a stop request), over `host_group()`'s group."""
    import torch.distributed as dist

    total = torch.tensor([float(flag)])
    dist.all_reduce(total, group=group)
    return bool(total.item())

