"""GPU-memory estimate of a training configuration. Imports torch only inside detect_gpu_memory()."""

from trainer.memory.estimate import MemoryEstimate, Note, detect_gpu_memory, estimate_memory
from trainer.memory.table import OPTIMIZER_STATE_BYTES

__all__ = ["OPTIMIZER_STATE_BYTES", "MemoryEstimate", "Note", "detect_gpu_memory", "estimate_memory"]
