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



@rule
def _fp8_base_only_frozen(cfg: TrainConfig) -> list[Finding]:
    """fp8_base stores the frozen U-Net in fp8; a full fine-tune trains it, and fp8 weights cannot take the
    small updates training makes."""
    if cfg.speed.fp8_base and cfg.model.training_type == "dreambooth" and not cfg.training.network_train_text_encoder_only:
        return [error("speed.fp8_base", "stores a frozen base model in fp8, but this Dreambooth run trains the U-Net; "
                      "turn fp8_base off (or train a LoRA)",
                      "以 fp8 存放冻结的底模，但此 Dreambooth 训练会训练 U-Net 本身；请关闭 fp8_base（或改为训练 LoRA）")]
    return []
