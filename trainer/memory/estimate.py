"""Estimate the peak GPU memory of a training run from its configuration, with the family's figures
(trainer/families/<name>/__init__.py, SPEC.memory) and the shared ones in table.py.

Peak = everything resident (frozen weights, LoRA weights, gradients, optimizer states, overhead) + the
largest transient: the denoiser's activations, or the VAE encoding a batch when latents are not cached
(the VAE runs before the U-Net and its memory is freed, so the two do not add up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

from trainer.config import TrainConfig, parse_resolution
from trainer.config.keyvalue import parse_key_values
from trainer.families import get_spec
from trainer.memory.measured import fitted_costs
from trainer.memory.table import (
    CHECKPOINT_FACTOR,
    DEFAULT_STATE_BYTES,
    FP8,
    FULL,
    GIB,
    HALF,
    OPTIMIZER_STATE_BYTES,
    OVERHEAD_GB,
    FamilyCosts,
)


@dataclass(frozen=True)
class Note:
    en: str
    zh: str

    def text(self, lang: str = "en") -> str:
        return self.zh if lang == "zh" else self.en


@dataclass
class MemoryEstimate:
    total_gb: float
    parts: dict[str, float]  # part -> GB: base, text_encoder, vae, network, gradients, optimizer, activations, overhead
    notes: list[Note] = field(default_factory=list)


def _costs(cfg: TrainConfig) -> tuple[FamilyCosts, bool]:
    """The family's figures, fitted to the base model when it is a local folder we can measure."""
    return fitted_costs(get_spec(cfg.model.family).memory, cfg.model.base_model)


def _gb(params: float, bytes_each: float) -> float:
    return params * bytes_each / GIB


def _trained(cfg: TrainConfig) -> tuple[bool, bool]:
    """(denoiser LoRA trained, text-encoder LoRA trained)."""
    t = cfg.training
    te = not t.network_train_unet_only and not cfg.speed.cache_text_encoder_outputs
    return not t.network_train_text_encoder_only, te


def _trains_t5(cfg: TrainConfig) -> bool:
    """flux.train_t5xxl; its figures (FamilyCosts.t5_*) are zero for the families without a T5."""
    return cfg.flux.train_t5xxl


def _trainable_params(cfg: TrainConfig, fam: FamilyCosts) -> float:
    net = cfg.network
    if cfg.model.training_type == "dreambooth":
        return (fam.denoiser_params_b + (fam.text_encoder_params_b if _trained(cfg)[1] else 0.0)) * 1e9
    return min(_ranked_params(cfg, fam, net.network_dim, net.conv_dim), _lokr_most(cfg, fam))


def _ranked_params(cfg: TrainConfig, fam: FamilyCosts, dim: int, conv_dim: int) -> float:
    """A LoRA's parameters at rank `dim` (and `conv_dim` on the convolutions)."""
    unet, te = _trained(cfg)
    te_per_rank = fam.lora_text_encoder_per_rank_m + (fam.t5_lora_per_rank_m if _trains_t5(cfg) else 0.0)
    per_rank = (fam.lora_denoiser_per_rank_m if unet else 0.0) + (te_per_rank if te else 0.0)
    locon = fam.locon_per_rank_m * conv_dim if unet else 0.0
    return (per_rank * dim + locon) * 1e6


def _lokr_most(cfg: TrainConfig, fam: FamilyCosts) -> float:
    """The most a LoKr holds, whatever its dim: every layer's two Kronecker factors whole (lycoris trains them so from
    half a factor's side up; kohya_ss' presets ask for it with dim 100000). With factor f the larger one is about the
    layer's weights / f² (the other f x f); factor -1 splits both sides near their square roots, about a rank-1 LoRA.
    Infinite for other networks: their parameters grow with the dim."""
    net = cfg.network
    if (net.network_module, net.lycoris_algo) != ("lycoris.kohya", "lokr"):
        return math.inf
    try:
        factor = int(parse_key_values(net.network_args, "network.network_args").get("factor", -1))
    except (TypeError, ValueError):  # check() names a malformed entry; lycoris' own default here
        factor = -1
    if factor <= 0:
        return _ranked_params(cfg, fam, 1, 1 if net.conv_dim else 0)
    unet, te = _trained(cfg)
    encoders = fam.text_encoder_params_b - (0.0 if _trains_t5(cfg) else fam.t5_params_b)
    weights = (fam.denoiser_params_b if unet else 0.0) + (encoders if te else 0.0)
    return weights * 1e9 / factor**2


def _compute_bytes(cfg: TrainConfig) -> int:
    return FULL if cfg.speed.mixed_precision == "no" else HALF


def _base_bytes(cfg: TrainConfig) -> int:
    return FP8 if cfg.speed.fp8_base else _compute_bytes(cfg)


def _denoiser_bytes(cfg: TrainConfig, fam) -> float:
    """Bytes a denoiser weight, on average: with fp8_base only part of it is stored in fp8."""
    compute = _compute_bytes(cfg)
    return fam.fp8_share * FP8 + (1 - fam.fp8_share) * compute if cfg.speed.fp8_base else compute


def _swapped_params(cfg: TrainConfig, fam) -> float:
    """Denoiser parameters blocks_to_swap keeps off the GPU: the swapped blocks but the largest of them, which is
    on the GPU while it computes. The families that swap nothing have no swap_split."""
    if not cfg.flux.blocks_to_swap or fam.swap_split is None:
        return 0.0
    double, single = fam.swap_split(cfg.flux.blocks_to_swap)
    swapped = double * fam.double_block_params_b + single * fam.single_block_params_b
    return (swapped - (fam.double_block_params_b if double else fam.single_block_params_b)) * 1e9


def _pairs_class_images(cfg: TrainConfig) -> bool:
    """Dreambooth with class images adds one to every training image of a batch (trainer/data/prior_pairs.py)."""
    has_class = bool(cfg.dataset.reg_data_dir.strip()) or cfg.dreambooth.num_class_images > 0
    return cfg.model.training_type == "dreambooth" and has_class


def _activations(cfg: TrainConfig, fam: FamilyCosts) -> tuple[float, float]:
    """(denoiser + text-encoder activations, VAE encode) in GB for one step's batch."""
    w, h = parse_resolution(cfg.dataset.resolution)
    batch = cfg.training.train_batch_size * (2 if _pairs_class_images(cfg) else 1)
    images = batch * (w * h) / fam.ref_pixels
    precision = 2.0 if cfg.speed.mixed_precision == "no" else 1.0
    ckpt = CHECKPOINT_FACTOR if cfg.training.gradient_checkpointing else 1.0
    act = fam.activations_gb * images * precision * ckpt
    if _trained(cfg)[1]:
        per_image = fam.text_encoder_activations_gb + (fam.t5_activations_gb if _trains_t5(cfg) else 0.0)
        act += per_image * batch * precision * ckpt
    vae = 0.0 if cfg.speed.cache_latents else fam.vae_encode_gb * images * precision
    return act, vae


def estimate_memory(cfg: TrainConfig) -> MemoryEstimate:
    """Peak GPU memory of training `cfg`, by part, with notes on what would lower it."""
    fam, measured = _costs(cfg)  # once: measuring a local folder reads its weight files' headers
    base_bytes = _base_bytes(cfg)
    trainable = _trainable_params(cfg, fam)
    weight_bytes = HALF if (cfg.speed.full_fp16 or cfg.speed.full_bf16) else FULL
    state = OPTIMIZER_STATE_BYTES.get(cfg.optimizer.optimizer_type, DEFAULT_STATE_BYTES)
    te_resident = not cfg.speed.cache_text_encoder_outputs  # cached outputs: the encoders leave the GPU
    activations, vae_encode = _activations(cfg, fam)
    vae_weights = 0.0 if cfg.speed.cache_latents else _gb(fam.vae_params_b * 1e9, FULL if cfg.speed.no_half_vae
                                                          else base_bytes if base_bytes != FP8 else HALF)
    unet_trained, te_trained = _trained(cfg)
    full = cfg.model.training_type == "dreambooth"  # the trained parts are the model itself: counted once
    parts = {
        "base": 0.0 if full and unet_trained else _gb(fam.denoiser_params_b * 1e9 - _swapped_params(cfg, fam),
                                                      _denoiser_bytes(cfg, fam)),
        "text_encoder": _gb(fam.text_encoder_params_b * 1e9, base_bytes) if te_resident and not (full and te_trained)
        else 0.0,
        "vae": vae_weights,
        "network": _gb(trainable, weight_bytes),
        "gradients": _gb(trainable, weight_bytes),
        "optimizer": _gb(trainable, state),
        "activations": max(activations, vae_encode),
        "overhead": OVERHEAD_GB,
    }
    if full and cfg.dreambooth.fused_backward_pass:  # each gradient is applied and freed as soon as it is made
        parts["gradients"] = 0.0
    if full and cfg.dreambooth.ema_decay > 0:  # EMA: one more copy of the trained weights
        parts["ema"] = _gb(trainable, weight_bytes)
    parts = {k: round(v, 3) for k, v in parts.items()}
    return MemoryEstimate(round(sum(parts.values()), 2), parts, _notes(cfg, fam, measured))


def _notes(cfg: TrainConfig, fam: FamilyCosts, measured: bool) -> list[Note]:
    notes = [Note("A rough estimate from community figures; real use varies by a GB or so with drivers and "
                  "attention kernels.", "基于社区经验数据的粗略估计；实际占用会因驱动和注意力实现相差 1 GB 左右。")]
    if measured:
        notes.append(Note("Model sizes measured from the base model's own files.", "模型大小按底模自身的文件实测。"))
    if not cfg.training.gradient_checkpointing:
        notes.append(Note("Gradient checkpointing would cut activation memory to about a third (20-30% slower).",
                          "开启梯度检查点可将激活值显存降到约三分之一（速度慢 20-30%）。"))
    if cfg.optimizer.optimizer_type in ("AdamW", "Lion", "SGDNesterov"):
        notes.append(Note("An 8-bit optimizer (e.g. AdamW8bit) stores its states in a quarter of the memory.",
                          "8 位优化器（如 AdamW8bit）只用四分之一的显存保存优化器状态。"))
    if (cfg.model.training_type == "dreambooth" and cfg.optimizer.optimizer_type == "AdaFactor"
            and not cfg.dreambooth.fused_backward_pass and cfg.training.gradient_accumulation_steps == 1):
        notes.append(Note("dreambooth.fused_backward_pass would free each gradient as soon as it is applied: the "
                          "gradients part drops to almost nothing.",
                          "开启 dreambooth.fused_backward_pass 后每个梯度应用后立即释放：梯度部分几乎降为零。"))
    if not cfg.speed.cache_latents:
        notes.append(Note("Caching latents keeps the VAE off the GPU while training.",
                          "缓存潜变量后，训练时 VAE 不必留在显卡上。"))
    if _swapped_params(cfg, fam):
        notes.append(Note(f"{cfg.flux.blocks_to_swap} blocks wait in CPU memory (blocks_to_swap): each step is slower "
                          "and the run needs that much more system RAM.",
                          f"{cfg.flux.blocks_to_swap} 个块放在内存中（块交换）：每步更慢，并需要相应更多的系统内存。"))
    return notes


@lru_cache(maxsize=1)
def detect_gpu_memory() -> float | None:
    """Total memory of the first CUDA GPU in GB (GiB), or None without one. Cached: the card does not change."""
    # nvidia-smi, not torch.cuda: initialising CUDA here would keep a context (hundreds of MB) on the card in
    # the UI process for its whole life, memory the training process then lacks.
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return float(out.splitlines()[0]) * 2**20 / GIB  # MiB
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
