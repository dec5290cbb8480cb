"""The "fastest" speed preset: presets/fastest.toml lists every speed switch it may turn on; `for_gpu` keeps
those that are safe on the machine described (a pure function, so it is tested without a GPU).

Why each is kept or dropped:
- no GPU: only the fused optimizer (torch's fused AdamW is 3-8x faster per step than its default on a CPU too);
  compilation needs a C++ compiler and minutes per shape, pinning and cuDNN/TF32 do nothing there, a CPU computes
  in step with Python so a deferred loss read-back only delays the progress display, workers compete with the
  math for few cores, and channels_last made full-size SD1.5's step 0.83x as fast on a CPU (bench/README.md,
  "Every speed switch alone").
- a CUDA GPU: fused optimizer, pinned memory, cuDNN autotuning, channels_last, two persistent loader workers, the
  loss read back every 10 steps.
- Ampere or newer (compute capability 8.0+): also TF32, bf16, and regional compilation (Triton's fast paths);
  older cards (Turing, e.g. a 2080) keep fp32 matmuls exact and get fp16 instead of bf16 they cannot run fast.
"""

from __future__ import annotations

from dataclasses import dataclass

AMPERE = (8, 0)


@dataclass(frozen=True)
class GpuInfo:
    name: str
    capability: tuple[int, int]  # CUDA compute capability: (7, 5) Turing, (8, 6) Ampere, (8, 9) Ada
    memory_gb: float
    cpu_count: int = 1

    @property
    def ampere_or_newer(self) -> bool:
        return tuple(self.capability) >= AMPERE


CPU_SAFE = {"fused_optimizer"}
AMPERE_ONLY = {"tf32", "compile_blocks"}


def for_gpu(overlay: dict, gpu: GpuInfo | None) -> dict:
    """The preset's overlay (tables of the config) cut to what is safe on `gpu` (None: no GPU)."""
    speed = dict(overlay.get("speed", {}))
    if gpu is None:
        speed = {k: v for k, v in speed.items() if k in CPU_SAFE}
    else:
        if not gpu.ampere_or_newer:
            speed = {k: v for k, v in speed.items() if k not in AMPERE_ONLY}
            if speed.get("mixed_precision") == "bf16":
                speed["mixed_precision"] = "fp16"
        speed["max_data_loader_n_workers"] = min(speed.get("max_data_loader_n_workers", 0), gpu.cpu_count)
    return {**overlay, "speed": speed}
