"""dreambooth.fused_backward_pass: the optimizer update of each weight runs inside the backward pass, as soon
as that weight's gradient is complete (PyTorch's register_post_accumulate_grad_hook), and the gradient is freed
right after, so the whole model's gradients never sit in memory together (sd-scripts' fused_backward_pass).

The optimizer stays one object (its state, scheduler, resume and progress read it as usual); a hook steps it
with a single one-weight group. That is exact for AdaFactor, whose update of a weight reads nothing but that
weight, its gradient and its own state; the rules allow nothing else (trainer/config/rules_dreambooth.py).
"""

from __future__ import annotations

from functools import partial

import torch


class FusedBackward:
    def __init__(self, optimizer, max_grad_norm: float):
        self.optimizer = getattr(optimizer, "optimizer", optimizer)  # inside accelerate's wrapper
        self.max_grad_norm = max_grad_norm
        self.squares: list[torch.Tensor | None] = [None] * len(self.optimizer.param_groups)
        self.handles = [p.register_post_accumulate_grad_hook(partial(self._step, index))
                        for index, group in enumerate(self.optimizer.param_groups) for p in group["params"]]

    def _step(self, index: int, param: torch.nn.Parameter) -> None:
        # One norm per weight, in fp32: summed (squared) into the group's reported norm, and the clip's own.
        norm = torch.linalg.vector_norm(param.grad.detach(), dtype=torch.float32)
        square = norm.square()
        self.squares[index] = square if self.squares[index] is None else self.squares[index] + square
        if self.max_grad_norm > 0:  # sd-scripts clips each weight's gradient on its own here
            torch.nn.utils.clip_grads_with_norm_([param], self.max_grad_norm, norm)
        groups = self.optimizer.param_groups
        self.optimizer.param_groups = [{**groups[index], "params": [param]}]  # the current lr, this weight only
        try:
            self.optimizer.step()
        finally:
            self.optimizer.param_groups = groups
        param.grad = None

    def take_grad_norms(self) -> list[torch.Tensor]:
        """Each group's gradient norm over the backward pass just done (then reset), left on the device as the
        normal path leaves its norms."""
        norms = [s.sqrt() if s is not None else torch.zeros(()) for s in self.squares]
        self.squares = [None] * len(self.squares)
        return norms

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
