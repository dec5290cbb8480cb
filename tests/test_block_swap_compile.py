"""blocks_to_swap with speed.compile_blocks: the swap hooks run outside the compiled blocks. Traced, every call
failed a guard on the hooks' own bookkeeping (the onload counter, the saved-tensor hooks) and compiled the
block again, until torch's recompile limit left it uncompiled."""

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


def test_swapped_blocks_compile_once_and_keep_their_cpu_copy_between_uses():
    torch.manual_seed(0)
    blocks = torch.nn.Sequential(_Block(), _Block(), _Block())
    swap = BlockSwap(list(blocks), "cpu").install(blocks)
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
            after_first = after_first if _ else len(compiled)
        assert len(compiled) == after_first  # calls 2-4 reuse what call 1 compiled
        assert all(swap.is_offloaded(b) for b in blocks)
    finally:
        torch._dynamo.reset()
