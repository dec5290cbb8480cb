"""Rules for Dreambooth settings (registered with the others in trainer.config.rules.RULES)."""

from __future__ import annotations

from trainer.config.errors import Finding, error
from trainer.config.rules import rule
from trainer.config.schema import TrainConfig


@rule
def _class_images(cfg: TrainConfig) -> list[Finding]:
    d = cfg.dreambooth
    if d.num_class_images and not d.class_prompt.strip():
        return [error("dreambooth.class_prompt", "is empty, but num_class_images asks for generated class images; "
                      "write the class, e.g. 'a photo of a dog', or set num_class_images to 0",
                      "为空，但 num_class_images 要求生成类别图片；请写出类别（如 'a photo of a dog'），或将 num_class_images 设为 0")]
    return []

