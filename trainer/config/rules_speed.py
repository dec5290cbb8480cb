"""Rules for speed settings that depend on others: DistributedDataParallel's static graph, the text-encoder caching
batch (registered with the others in trainer.config.rules.RULES)."""

from __future__ import annotations

from trainer.config.errors import Finding, error, warning
from trainer.config.keyvalue import parse_key_values
from trainer.config.rules import rule
from trainer.config.schema import TrainConfig


def _steps_that_skip_weights(cfg: TrainConfig) -> list[str]:
    """The settings under which a step can leave some trained weights without a gradient."""
    out = []
    if cfg.model.training_type == "lora" and cfg.network.network_module == "networks.dylora":
        out.append("networks.dylora (one rank a step)")
    try:
        args = parse_key_values(cfg.network.network_args, "network.network_args")
    except ValueError:  # named by the network rules
        args = {}
    if cfg.model.training_type == "lora" and float(args.get("module_dropout", 0) or 0) > 0:
        out.append("module_dropout in network_args")
    if cfg.model.training_type == "dreambooth" and cfg.dreambooth.stop_text_encoder_training > 0:
        out.append("dreambooth.stop_text_encoder_training")
    return out


@rule
def _static_graph(cfg: TrainConfig) -> list[Finding]:
    """DDP's static graph assumes every step uses the same weights; a step that leaves some out breaks it."""
    skipping = _steps_that_skip_weights(cfg) if cfg.speed.ddp_static_graph else []
    if not skipping:
        return []
    names = ", ".join(skipping)
    return [error("speed.ddp_static_graph", f"assumes every step uses the same trained weights, and {names} leaves some "
                  "out in some steps; turn ddp_static_graph off", f"假定每一步都使用相同的训练权重，而 {names} 在某些步骤"
                  "中不会用到部分训练权重；请关闭 ddp_static_graph")]


@rule
def _text_encoder_batch(cfg: TrainConfig) -> list[Finding]:
    if cfg.speed.text_encoder_batch_size and not cfg.speed.cache_text_encoder_outputs:
        return [warning("speed.text_encoder_batch_size", "is the batch of caching text-encoder outputs, and "
                        "cache_text_encoder_outputs is off; turn that on or set this to 0",
                        "是缓存文本编码器输出时的批次大小，而 cache_text_encoder_outputs 未开启；请开启它或把此项设为 0")]
    return []
