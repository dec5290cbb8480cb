"""Flux.1: LoRA names are BFL module names with q/k/v (and a single block's MLP input) fused
(trainer.networks.flux_names), CLIP-L `lora_te1_` and, with flux.train_t5xxl, T5 `lora_te3_` under its own module
paths, as sd-scripts' lora_flux (and ComfyUI) name them.

Memory figures: the transformer has 11.9 B parameters, T5-XXL 4.76 B (+ CLIP-L); LoRA parameters per rank were
counted from the block layout. Measured on an H200 (bench/flux_memory.py: full-size FLUX.1-dev transformer with
random weights, fp8 base + bf16 + checkpointing, cached text outputs, LoRA dim 16 with AdamW, batch 1, flash
attention): 1024 px 18.28 GB at 1.22 s/step; blocks_to_swap 18: 11.73 GB, 1.69 s/step; 35: 5.47 GB, 1.64 s/step;
512 px with 18: 10.10 GB, 1.18 s/step. Those runs kept the AdaLN modulation Linears (3.2 B parameters) in bf16;
fp8_base now stores them in fp8 as sd-scripts does (trainer/engine/fp8.py), so fp8_share is 1.0 (counted on the
FLUX.1-dev config; it was 0.727) and each figure above should drop by about 3.2 GB: not yet measured. They
confirmed the activation figure (about 3 GB at 1024 px with checkpointing; the community reports ~16-24 GB with an
fp8 base, checkpointing and cached text-encoder outputs); each swapped block frees its weights, and one is on the
GPU while it computes.
"""

from trainer.families.spec import FamilySpec, LoraNaming
from trainer.memory.table import FamilyCosts

# LoKr/DoRA transformer modules are named per diffusers Linear with this prefix (trainer.networks.flux_sliced)
SLICED_PREFIX = "lycoris_"


def flux_swap_split(blocks_to_swap: int) -> tuple[int, int]:
    """(double, single) blocks that flux.blocks_to_swap = N keeps in CPU memory, counted as sd-scripts counts
    them (a double block is about two single ones): N // 2 double and (N - N // 2) * 2 single blocks."""
    double = blocks_to_swap // 2
    return double, (blocks_to_swap - double) * 2


def bfl_unet_names(transformer):
    """Transformer module path -> sd-scripts' name of the fused BFL Linear it is part of."""
    from trainer.networks.flux_names import bfl_name

    return lambda path: bfl_name(path)[0]


def fused_unet_state_dict(modules: dict, down_key: str, up_key: str, alpha_key: str) -> dict:
    """The transformer's adapters, fused as sd-scripts saves them (flux_names.unet_state_dict; imports torch)."""
    from trainer.networks.flux_names import unet_state_dict

    return unet_state_dict(modules, down_key, up_key, alpha_key)


def split_qkv_note(meta: dict) -> str | None:
    """sd-scripts' split_qkv files keep one split's alpha for the fused module (trainer.networks.flux_load)."""
    from trainer.networks.flux_load import split_qkv_note as note

    return note(meta)


def split_fused_unet(state_dict: dict, groups: dict, lora_set) -> tuple[dict, dict]:
    """A Flux file's fused modules split back into the transformer's Linears (trainer.networks.flux_load)."""
    from trainer.networks import flux_load

    flux_load.check_flux_file(state_dict)
    return flux_load.take_fused(groups, lora_set)


SPEC = FamilySpec(
    name="flux", label="Flux", base_model_version="flux1", resolution=1024,
    network_builders="trainer.networks.flux_factory", convolutional=False,
    lora_naming=LoraNaming(
        text_encoders={"text_encoder": "lora_te1_", "text_encoder_2": "lora_te3_"},  # te3: T5, as sd-scripts names it
        plain_paths=frozenset({"text_encoder_2"}), unet_names=bfl_unet_names, fused_unet=fused_unet_state_dict,
        split_fused=split_fused_unet, unet_prefixes=("lora_unet_", SLICED_PREFIX), file_note=split_qkv_note),
    modelspec_architecture="flux-1-dev",  # the engine says flux-1-schnell for a transformer without guidance
    modelspec_implementation="https://github.com/black-forest-labs/flux",  # BFL module names
    engine=f"{__name__}.engine",
    memory=FamilyCosts(11.9, 4.88, 0.084, 4.8, 0.166, 0.0, 1024 * 1024, 10.0, 0.05, 2.5, fp8_share=1.0,
                       double_block_params_b=0.3398, single_block_params_b=0.1416, swap_split=flux_swap_split,
                       t5_lora_per_rank_m=1.819, t5_activations_gb=1.8, t5_params_b=4.76),
)
