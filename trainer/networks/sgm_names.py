"""diffusers U-Net module paths -> the original LDM/SGM layout that SDXL LoRA files use.

sd-scripts trains SDXL on a U-Net written in the original layout, so SDXL kohya files name modules
`input_blocks.4.1.transformer_blocks.0.attn1.to_q` where diffusers says
`down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q`. The map is read off the diffusers model:

- input_blocks.0 is conv_in; then, per down block, one input block per layer holding [resnet, attention?],
  then one holding the downsampler (its conv is called `op`);
- middle_block = [resnet 0, attention 0, resnet 1];
- per up block, one output block per layer holding [resnet, attention?, upsampler? (last layer only)].

Inside a ResNet the layer names differ too (conv1 -> in_layers.2, conv2 -> out_layers.3,
time_emb_proj -> emb_layers.1, conv_shortcut -> skip_connection); inside an attention block they are equal.
"""

from __future__ import annotations

from torch import nn

_RESNET_LEAVES = {
    "conv1": "in_layers.2", "conv2": "out_layers.3", "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}


def _down_prefixes(unet: nn.Module) -> dict[str, str]:
    prefixes: dict[str, str] = {}
    index = 0  # input_blocks.0 is conv_in
    for i, block in enumerate(unet.down_blocks):
        attentions = getattr(block, "attentions", None)
        for j in range(len(block.resnets)):
            index += 1
            prefixes[f"down_blocks.{i}.resnets.{j}"] = f"input_blocks.{index}.0"
            if attentions is not None:
                prefixes[f"down_blocks.{i}.attentions.{j}"] = f"input_blocks.{index}.1"
        if getattr(block, "downsamplers", None):
            index += 1
            prefixes[f"down_blocks.{i}.downsamplers.0"] = f"input_blocks.{index}.0"
    return prefixes


def _mid_prefixes(unet: nn.Module) -> dict[str, str]:
    mid = unet.mid_block
    if mid is None:
        return {}
    prefixes = {"mid_block.resnets.0": "middle_block.0"}
    if getattr(mid, "attentions", None):
        prefixes["mid_block.attentions.0"] = "middle_block.1"
        prefixes["mid_block.resnets.1"] = "middle_block.2"
    else:
        prefixes["mid_block.resnets.1"] = "middle_block.1"
    return prefixes


def _up_prefixes(unet: nn.Module) -> dict[str, str]:
    prefixes: dict[str, str] = {}
    index = -1
    for i, block in enumerate(unet.up_blocks):
        attentions = getattr(block, "attentions", None)
        layers = len(block.resnets)
        for j in range(layers):
            index += 1
            prefixes[f"up_blocks.{i}.resnets.{j}"] = f"output_blocks.{index}.0"
            if attentions is not None:
                prefixes[f"up_blocks.{i}.attentions.{j}"] = f"output_blocks.{index}.1"
        if getattr(block, "upsamplers", None):
            # The upsampler sits after the last layer's resnet (and attention, when the block has one).
            slot = 2 if attentions is not None else 1
            prefixes[f"up_blocks.{i}.upsamplers.0"] = f"output_blocks.{index}.{slot}"
    return prefixes


def sgm_prefix_map(unet: nn.Module) -> dict[str, str]:
    """diffusers block prefix (e.g. `down_blocks.1.attentions.0`) -> SGM prefix (`input_blocks.4.1`)."""
    return {**_down_prefixes(unet), **_mid_prefixes(unet), **_up_prefixes(unet)}


def _rename_leaf(prefix: str, leaf: str) -> str:
    if ".resnets." in prefix or prefix.startswith("mid_block.resnets"):
        head, _, rest = leaf.partition(".")
        return ".".join(filter(None, [_RESNET_LEAVES.get(head, head), rest]))
    if ".downsamplers." in prefix and leaf == "conv":
        return "op"
    return leaf


# Layers outside the blocks, which LyCORIS presets (full, unet-only) also train.
TOP_LEVEL = {
    "conv_in": "input_blocks.0.0", "time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2", "conv_norm_out": "out.0",
    "conv_out": "out.2",
}


def diffusers_to_sgm(module_path: str, prefix_map: dict[str, str]) -> str:
    """SGM path of one diffusers U-Net module path (block layers, and the few top-level ones in TOP_LEVEL)."""
    if module_path in TOP_LEVEL:
        return TOP_LEVEL[module_path]
    parts = module_path.split(".")
    # Block prefixes are always 4 parts deep (`down_blocks.1.attentions.0`, `mid_block.resnets.0` is 3).
    for depth in (4, 3):
        prefix = ".".join(parts[:depth])
        if prefix in prefix_map:
            leaf = ".".join(parts[depth:])
            return f"{prefix_map[prefix]}.{_rename_leaf(prefix, leaf)}"
    raise ValueError(f"no SGM name for U-Net module {module_path!r}")
