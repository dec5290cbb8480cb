"""SD2.x: told apart from SD1.x (trainer.models.detect) and refused by the loader, which does not train it yet;
its LoRA files name (and block weights number) modules as SD1.x files do."""

from trainer.families.sd15 import SD_BLOCKS, SD_NAMING
from trainer.families.spec import FamilySpec

SPEC = FamilySpec(name="sd2", label="SD2", base_model_version="sd_v2", lora_naming=SD_NAMING, lora_blocks=SD_BLOCKS,
                  resolution=768)
