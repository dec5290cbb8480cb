"""LoRA adapters (peft) for the U-Net and text encoders, and the kohya-format files users load.

Modules: targets (which layers), inject (add_lora -> LoraSet), sgm_names (SDXL original layout),
kohya_format (to/from kohya keys), metadata (ss_* header, model hash), save (atomic save/read).
"""
