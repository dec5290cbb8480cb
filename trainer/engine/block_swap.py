"""blocks_to_swap: some transformer blocks keep their frozen weights in CPU memory and are brought to the GPU only
for their own forward pass, then dropped again, in the forward and in the backward pass.

diffusers' group offloading (`apply_group_offloading`) does the same for inference, but it is not made for
training: it moves the adapter weights with the block (their gradients and optimizer state would then live on the
CPU), and autograd keeps the onloaded weights it saved for the backward pass alive on the GPU, so nothing is
saved. Here only frozen parameters move (the LoRA weights injected into a swapped block stay on the GPU), and
the frozen weights never change, so each has one CPU copy (pinned on a CUDA machine) that the block's
parameter points back to after use; onloading is a copy to the GPU, offloading costs nothing.

The backward pass needs the swapped weights again:
- with gradient checkpointing the block's forward runs again during backward, and the same hooks onload it; some
  ops (CUDA's fused RMSNorm) keep the parameter itself for their backward, so a block recomputed there is offloaded
  only when the next swapped block comes in or the backward pass ends;
- without it, autograd would keep every onloaded weight it saved until backward, so the saved weights are packed
  as a reference to the CPU copy (torch.autograd.graph.saved_tensors_hooks) and copied back to the GPU when the
  backward pass unpacks them.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class _OnCpu:
    """A saved weight (or a view of one) packed as its parameter's CPU copy, restored as the same view in the
    dtype autograd saved it in."""

    param: torch.nn.Parameter
    dtype: torch.dtype
    size: tuple
    stride: tuple
    offset: int


class BlockSwap:
    """Swap the frozen parameters of `blocks` between a CPU copy and `device`. `install(model)` places everything
    else of `model` on `device` and registers the hooks."""

    def __init__(self, blocks: list[torch.nn.Module], device, checkpointing=lambda: False):
        self.blocks = list(blocks)
        self.device = _indexed(torch.device(device))
        self.checkpointing = checkpointing  # callable: True when the model recomputes blocks in backward
        self.cpu: dict[torch.nn.Parameter, torch.Tensor] = {}  # a swapped parameter -> its CPU copy
        # each block's frozen parameters, listed once at install: the hooks (and _pack, once per saved tensor)
        # read them on every call
        self._frozen: dict[torch.nn.Module, list[torch.nn.Parameter]] = {}
        self._saved_hooks: dict[torch.nn.Module, ExitStack] = {}
        self._pending: list[torch.nn.Module] = []  # recomputed in backward, offloaded once autograd is past them
        self._flush_queued = False

    def frozen(self, block: torch.nn.Module) -> list[torch.nn.Parameter]:
        return self._frozen[block]

    def install(self, model: torch.nn.Module) -> BlockSwap:
        """Call after the adapters are injected (and fp8 storage applied): parameters that require grad then stay
        on the GPU, and the CPU copies hold the stored (fp8) weights."""
        pin = self.device.type == "cuda"
        for block in self.blocks:
            self._frozen[block] = [p for p in block.parameters() if not p.requires_grad]
            for p in self.frozen(block):
                copy = p.data.to("cpu")
                self.cpu[p] = copy.pin_memory() if pin else copy
                p.data = self.cpu[p]
            block.register_forward_pre_hook(self._before)
            block.register_forward_hook(self._after, always_call=True)
        swapped = set(self.cpu)
        for t in [*model.parameters(), *model.buffers()]:
            if t not in swapped:
                t.data = t.data.to(self.device)
        return self

    def is_offloaded(self, block: torch.nn.Module) -> bool:
        """True when every swapped parameter of `block` is its CPU copy (what lies between uses)."""
        return all(p.data.data_ptr() == self.cpu[p].data_ptr() for p in self.frozen(block))

    # --- hooks -------------------------------------------------------------------------------------------
    # Never traced into a compiled block (speed.compile_blocks): they move weights and keep counts, so every call
    # would fail a guard and compile the block again, until torch's recompile limit left it uncompiled.
    @torch.compiler.disable
    def _before(self, block, args) -> None:
        while self._pending:  # the block recomputed before this one (backward runs the blocks last to first)
            self._offload(self._pending.pop())
        for p in self.frozen(block):
            # always a new tensor (a copy even when device is the CPU), so the CPU copy is never written
            p.data = self.cpu[p].to(self.device, non_blocking=True, copy=True)
        if torch.is_grad_enabled() and not self.checkpointing():
            stack = ExitStack()
            stack.enter_context(torch.autograd.graph.saved_tensors_hooks(
                lambda t, b=block: self._pack(b, t), self._unpack))
            self._saved_hooks[block] = stack

    @torch.compiler.disable
    def _after(self, block, args, output):
        stack = self._saved_hooks.pop(block, None)
        if stack is not None:
            stack.close()
        if torch._C._current_graph_task_id() == -1:
            self._offload(block)
        else:
            # Recomputed by gradient checkpointing inside the backward pass: some ops (CUDA's fused RMSNorm) keep
            # the parameter itself for their backward, so it must stay on the GPU until autograd is past this
            # block: offloaded when the next swapped block comes in, or when the backward pass ends.
            self._pending.append(block)
            if not self._flush_queued:
                self._flush_queued = True
                torch.autograd.Variable._execution_engine.queue_callback(self._flush)
        return output

    def _offload(self, block) -> None:
        for p in self.frozen(block):
            p.data = self.cpu[p]  # the GPU copy is freed once nothing else holds it

    def _flush(self) -> None:
        self._flush_queued = False
        while self._pending:
            self._offload(self._pending.pop())

    def _pack(self, block, tensor: torch.Tensor):
        ptr = tensor.untyped_storage().data_ptr()
        for p in self.frozen(block):  # the current onloaded (or, under fp8, dtype-cast) weight, or a view of it
            if p.data.device == self.device and p.data.untyped_storage().data_ptr() == ptr:
                return _OnCpu(p, tensor.dtype, tuple(tensor.size()), tuple(tensor.stride()),
                              tensor.storage_offset() - p.data.storage_offset())
        return tensor

    def _unpack(self, packed):
        if isinstance(packed, _OnCpu):
            whole = self.cpu[packed.param].to(self.device, packed.dtype, copy=True)
            return whole.as_strided(packed.size, packed.stride, packed.offset)  # e.g. the transposed weight
        return packed


def _indexed(device: torch.device) -> torch.device:
    """cuda -> cuda:N (the current GPU), so it compares equal to the devices tensors report."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device
