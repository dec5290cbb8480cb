"""Rules for Dreambooth settings (registered with the others in trainer.config.rules.RULES)."""

from __future__ import annotations

from trainer.config.errors import Finding, error, warning
from trainer.config.rules import rule
from trainer.config.schema import TrainConfig, all_params, get_value


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


@rule
def _fused_backward(cfg: TrainConfig) -> list[Finding]:
    """sd-scripts' rules for fused_backward_pass: AdaFactor only, no gradient accumulation; a full fine-tune."""
    if not cfg.dreambooth.fused_backward_pass:
        return []
    field, out = "dreambooth.fused_backward_pass", []
    if cfg.model.training_type != "dreambooth":
        out.append(error(field, "works only for a Dreambooth run (model.training_type = dreambooth); turn it off",
                         "仅适用于 Dreambooth 训练（model.training_type = dreambooth）；请关闭它"))
    if cfg.optimizer.optimizer_type != "AdaFactor":
        out.append(error(field, f"works only with optimizer_type AdaFactor, not {cfg.optimizer.optimizer_type}; "
                         "choose AdaFactor or turn it off",
                         f"只能与 AdaFactor 优化器一起使用，当前为 {cfg.optimizer.optimizer_type}；请改用 AdaFactor 或关闭它"))
    if cfg.training.gradient_accumulation_steps > 1:
        out.append(error(field, "cannot accumulate gradients (each is applied and freed as it is computed); set "
                         "training.gradient_accumulation_steps to 1 or turn it off",
                         "无法累积梯度（每个梯度算出后立即应用并释放）；请把 training.gradient_accumulation_steps 设为 1 或关闭它"))
    if cfg.speed.mixed_precision == "fp16":
        out.append(error(field, "cannot unscale fp16 mixed-precision gradients one weight at a time; use "
                         "mixed_precision bf16 (or no), or turn it off",
                         "无法逐个权重地反缩放 fp16 混合精度的梯度；请使用 bf16（或 no）混合精度，或关闭它"))
    if cfg.speed.gpus > 1:
        out.append(error(field, "needs one GPU (gradients are applied before processes could average them); set "
                         "speed.gpus to 1 or turn it off", "只能单卡使用（梯度在多进程平均之前就已应用）；请把 speed.gpus 设为 1 或关闭它"))
    if cfg.training.max_grad_norm > 0 and not out:
        out.append(warning("training.max_grad_norm", "with fused_backward_pass each weight's gradient is clipped on "
                           "its own, not the whole model's together (as sd-scripts does); 0 turns clipping off",
                           "开启 fused_backward_pass 时每个权重的梯度单独裁剪，而不是整个模型一起裁剪（与 sd-scripts 相同）；设为 0 则不裁剪"))
    return out


@rule
def _dreambooth_only(cfg: TrainConfig) -> list[Finding]:
    """A Dreambooth setting changed on a LoRA run would do nothing: say so (fused_backward_pass errors above)."""
    if cfg.model.training_type == "dreambooth":
        return []
    return [warning(p.path, "applies only to a Dreambooth run (model.training_type = dreambooth) and is ignored "
                    "in this one", "仅适用于 Dreambooth 训练（model.training_type = dreambooth），本次训练中不起作用")
            for p in all_params() if p.group == "dreambooth" and p.name != "fused_backward_pass"
            and get_value(cfg, p.path) != p.default]
