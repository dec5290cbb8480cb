"""SDXL: CLIP-L and OpenCLIP bigG (`lora_te1_`, `lora_te2_`), U-Net LoRA names in the original SGM layout
(trainer.networks.sgm_names), as sd-scripts writes them.

Memory figures: the U-Net has 2.57 B parameters, CLIP-L + OpenCLIP bigG 0.818 B (0.123 + 0.695); LoRA parameters
per rank were counted from the block layout. The activation figures are community figures, not measured here: they
are calibrated so that the totals match what is widely reported for kohya sd-scripts with PyTorch SDPA attention
(SDXL LoRA, 1024 px, batch 1 needs ~12 GB with fp16, 8-bit AdamW, gradient checkpointing and cached latents, and
~24 GB without them).
"""

import re

from trainer.families.spec import UNET_PREFIX, FamilySpec, LoraBlocks, LoraNaming
from trainer.memory.table import FamilyCosts

_SGM_BLOCK = re.compile(r"^lora_unet_(input|output|middle)_blocks?_(\d+)_")


def sgm_unet_names(unet):
    """U-Net module path -> kohya name in the original SGM layout (`lora_unet_input_blocks_4_1_...`)."""
    from trainer.networks.sgm_names import diffusers_to_sgm, sgm_prefix_map

    prefix_map = sgm_prefix_map(unet) if unet is not None else {}
    return lambda path: UNET_PREFIX + diffusers_to_sgm(path, prefix_map).replace(".", "_")


def sgm_block_of(name: str) -> tuple[str, int] | None:
    """The block of a U-Net module's file name: the original layout names them (input_blocks.0-8, middle_block.0-2
    as three middle blocks, output_blocks.0-8), as sd-scripts' networks/lora.py numbers them (get_block_index;
    SDXL_NUM_OF_MID_BLOCKS = 3)."""
    m = _SGM_BLOCK.match(name)
    return ({"input": "down", "middle": "mid", "output": "up"}[m.group(1)], int(m.group(2))) if m else None


SPEC = FamilySpec(
    name="sdxl", label="SDXL", base_model_version="sdxl_base_v1-0", resolution=1024,
    lora_naming=LoraNaming(text_encoders={"text_encoder": "lora_te1_", "text_encoder_2": "lora_te2_"},
                           unet_names=sgm_unet_names),
    lora_blocks=LoraBlocks(count=9, mid=3, block_of=sgm_block_of),
    modelspec_architecture="stable-diffusion-xl-v1-base",
    modelspec_implementation="https://github.com/Stability-AI/generative-models",  # sgm module names
    engine=f"{__name__}.engine",
    memory=FamilyCosts(2.567, 0.818, 0.084, 2.66, 0.903, 0.60, 1024 * 1024, 12.0, 0.15, 2.5, fp8_share=0.87),
)
