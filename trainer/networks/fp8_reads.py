"""lycoris-lora modules on a base stored in fp8 (speed.fp8_base): they read the base weight in the compute dtype.

diffusers' layerwise casting (trainer/engine/fp8.py) casts a Linear's weight to the compute dtype only inside that
Linear's own forward and keeps it in fp8 everywhere else. lycoris-lora's modules read the base weight outside it:
every algorithm that rebuilds the weight (LoCon with rank_dropout or DoRA, LoHa, LoKr, IA3, DyLoRA, (diag-)OFT, BOFT,
GLoRA; bypass mode does not) reads it through `_current_weight()` or the `org_weight` property, and cannot compute
with fp8 ("mul_cpu_reduced_float not implemented for Float8_e4m3fn"). Such modules get a subclass whose two readers
return a copy in the casting's compute dtype: the same numbers the Linear computes with, the fp8 weight untouched,
and the algorithm's own maths (dropouts, decomposition) exactly as on a float base. Used for SD and Flux alike.
"""

from __future__ import annotations

from functools import cache

import torch
from torch import nn


def compute_dtype(layer: nn.Module) -> torch.dtype | None:
    """The dtype diffusers' layerwise casting computes `layer` in, or None where it is not cast."""
    registry = getattr(layer, "_diffusers_hook", None)
    casting = registry.get_hook("layerwise_casting") if registry is not None else None
    return casting.compute_dtype if casting is not None else None


class _ReadsBaseInComputeDtype:
    """Mixed in before a lycoris module class: its base-weight readers return a compute-dtype copy."""

    base_dtype: torch.dtype

    @property
    def org_weight(self) -> torch.Tensor:
        return self.org_module[0].weight.detach().to(self.base_dtype)

    def _current_weight(self) -> torch.Tensor:
        return self.org_weight


@cache
def _reading_class(cls: type) -> type:
    # the same class name: lycoris counts and logs modules by it
    return type(cls.__name__, (_ReadsBaseInComputeDtype, cls), {})


def read_base_in_compute_dtype(network) -> int:
    """Make every module of a lycoris network whose base layer is cast read that layer's weight in the compute dtype;
    returns how many."""
    count = 0
    for module in network.loras:
        dtype = compute_dtype(module.org_module[0])
        if dtype is not None:
            module.__class__ = _reading_class(type(module))
            module.base_dtype = dtype
            count += 1
    return count
