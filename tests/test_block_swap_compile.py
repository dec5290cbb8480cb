"""blocks_to_swap with speed.compile_blocks: the swap hooks run outside the compiled blocks. Traced, they were
compiled with the blocks (their weight moves and bookkeeping guarded and recompiled: a tiny Flux run's first
step took minutes), so a swapped block must compile to the same graphs as one that is not swapped."""

from __future__ import annotations

import torch

from trainer.engine.block_swap import BlockSwap


class _Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.frozen = torch.nn.Linear(8, 8).requires_grad_(False)
        self.lora = torch.nn.Linear(8, 8, bias=False)

    def forward(self, x):
        return torch.relu(self.frozen(x)) + self.lora(x)


class _OtherBlock(_Block):  # Flux swaps two kinds of block (double and single)
    pass


def _graphs_of_four_steps(swapped: bool) -> tuple[int, torch.nn.Module, BlockSwap | None]:
    torch.manual_seed(0)
    blocks = torch.nn.Sequential(_Block(), _OtherBlock(), _Block(), _OtherBlock())
    swap = BlockSwap(list(blocks), "cpu").install(blocks) if swapped else None
    compiled = []

    def backend(gm, example_inputs):  # counts every graph torch.compile makes, runs it as is
        compiled.append(gm)
        return gm.forward

    torch._dynamo.reset()
    for block in blocks:
        block.compile(backend=backend)
    try:
        for _ in range(4):
            blocks(torch.randn(2, 8)).square().mean().backward()
    finally:
        torch._dynamo.reset()
    return len(compiled), blocks, swap


def test_swapped_blocks_compile_like_blocks_that_stay_and_keep_their_cpu_copy_between_uses():
    plain, _, _ = _graphs_of_four_steps(swapped=False)
    graphs, blocks, swap = _graphs_of_four_steps(swapped=True)
    assert graphs == plain  # the hooks add no graph of their own and cause no recompilation
    assert all(swap.is_offloaded(b) for b in blocks)
