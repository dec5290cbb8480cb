"""SD1.x: one CLIP-L text encoder, U-Net LoRA names in diffusers' module paths.

Memory figures: the U-Net has 0.86 B parameters, CLIP-L 0.123 B. LoRA parameters per unit of rank were counted
for sd-scripts' default module set: 192 U-Net modules -> 0.424 M per rank, CLIP-L 72 modules -> 0.166 M, 3x3
convolutions for LoCon 0.544 M. The activation figure was first calibrated on community reports for kohya
sd-scripts with PyTorch SDPA attention (512 px, batch 1, fp16 + 8-bit AdamW + gradient checkpointing + cached
latents fits in ~6 GB: people report 4-6 GB cards; batch 4-6 without checkpointing runs on 12-16 GB cards), then
measured on an H200 (bench/gpu_memory.py: full-size SD1.5 architecture with random weights, 512 px, LoRA dim 32
on U-Net + text encoder, AdamW, peak torch.cuda.max_memory_allocated, which leaves out the ~0.5 GB CUDA context
that OVERHEAD_GB covers):
  fp16 bs1 + checkpointing 2.63 GB; fp16 bs2 + checkpointing 2.96 GB; bf16 bs2 4.95 GB; bf16 bs6 10.22 GB;
  fp32 bs1 7.11 GB. With activations_gb 1.6 the estimate was 20-24% above these; 1.25 brings it within ~10%
  (the rest is the overhead allowance).
"""

import re

from trainer.families.spec import FamilySpec, LoraBlocks, LoraNaming
from trainer.memory.table import FamilyCosts

_SD_BLOCK = re.compile(r"^lora_unet_(up|down)_blocks_(\d+)_(resnets|attentions|upsamplers|downsamplers)_(\d+)_")


def sd_block_of(name: str) -> tuple[str, int] | None:
    """The block of a U-Net module's file name as sd-scripts' networks/lora.py numbers SD1.x's: 12 down blocks (0 is
    conv_in, then 3 per down block: two layers and the downsampler), the middle block and 12 up blocks (3 per up
    block). Modules outside the blocks (time embedding, conv_out): None."""
    if name.startswith("lora_unet_mid_block_"):
        return "mid", 0
    if name == "lora_unet_conv_in":
        return "down", 0
    m = _SD_BLOCK.match(name)
    if not m:
        return None
    outer, inner = int(m.group(2)), 2 if m.group(3).endswith("samplers") else int(m.group(4))
    return (m.group(1), 1 + 3 * outer + inner) if m.group(1) == "down" else ("up", 3 * outer + inner)


# SD2.x files name and number their modules alike
SD_NAMING = LoraNaming(text_encoders={"text_encoder": "lora_te_"})
SD_BLOCKS = LoraBlocks(count=12, mid=1, block_of=sd_block_of)

SPEC = FamilySpec(
    name="sd15", label="SD1.5", base_model_version="sd_v1", lora_naming=SD_NAMING, lora_blocks=SD_BLOCKS, resolution=512,
    modelspec_architecture="stable-diffusion-v1", engine=f"{__name__}.engine",
    memory=FamilyCosts(0.860, 0.123, 0.084, 0.424, 0.166, 0.544, 512 * 512, 1.25, 0.05, 0.6, fp8_share=0.314),
)
