"""Full checkpoints of a Dreambooth run: one file in the original layout (LDM for SD1.x, SGM for SDXL) that
A1111, Forge and ComfyUI load as a base model (`.safetensors`, or `.ckpt`/`.pt` as save_model_as asks), optionally
a diffusers folder beside it, written atomically after a free-space check."""
