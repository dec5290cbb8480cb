"""Rules for continuing a network from a file (registered with the others in trainer.config.rules.RULES)."""

from __future__ import annotations

from trainer.config.errors import Finding, error
from trainer.config.rules import rule
from trainer.config.schema import TrainConfig

# The LyCORIS algorithms whose files hold lora_down/lora_up pairs, the shapes dim_from_weights reads ranks off.
RANKED_FILE_ALGOS = ("locon", "dylora")


@rule
def _dim_from_weights(cfg: TrainConfig) -> list[Finding]:
    """dim_from_weights reads the ranks of network_weights: it needs that file, and a network that has ranks laid out
    as lora_down/lora_up (trainer.networks.file_dims)."""
    n = cfg.network
    if not n.dim_from_weights:
        return []
    field = "network.dim_from_weights"
    if not n.network_weights.strip():
        return [error(field, "reads the rank and alpha of each layer from network_weights, which is empty: choose the "
                      "LoRA file to continue in network_weights, or turn this off",
                      "从 network_weights 读取每层的秩与 alpha，而它为空：请在 network_weights 中选择要继续训练的 LoRA "
                      "文件，或关闭此项")]
    if n.network_module == "networks.oft":
        return [error(field, "reads LoRA ranks (lora_down shapes); networks.oft has blocks, not ranks: set network_dim "
                      "to the file's number of blocks and turn this off",
                      "读取的是 LoRA 的秩（lora_down 的形状）；networks.oft 没有秩，只有块：请把 network_dim 设为文件的块数，"
                      "并关闭此项")]
    if n.network_module == "lycoris.kohya" and n.lycoris_algo not in RANKED_FILE_ALGOS:
        return [error(field, f"reads ranks off lora_down/lora_up pairs, which a LyCORIS {n.lycoris_algo} file does "
                      f"not have (only {' and '.join(RANKED_FILE_ALGOS)} do): set network_dim and conv_dim to the "
                      "file's and turn this off",
                      f"从 lora_down/lora_up 读取秩，而 LyCORIS {n.lycoris_algo} 文件没有这些（只有 "
                      f"{'、'.join(RANKED_FILE_ALGOS)} 有）：请把 network_dim 与 conv_dim 设为文件的值，并关闭此项")]
    return []
