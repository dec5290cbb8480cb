"""Full checkpoints of a Dreambooth run: one `.safetensors` in the original layout (LDM for SD1.x, SGM for
SDXL) that A1111, Forge and ComfyUI load as a base model, written atomically after a free-space check."""
