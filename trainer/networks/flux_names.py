"""Flux LoRA names as sd-scripts writes them (BFL module names), from diffusers' Flux transformer paths.

diffusers splits BFL's fused Linears: a double block's `img_attn.qkv` is attn.to_q/to_k/to_v (its `txt_attn.qkv`
is attn.add_q/k/v_proj) and a single block's `linear1` is attn.to_q/to_k/to_v plus proj_mlp. Danlu trains one
rank-r LoRA on each diffusers Linear and writes a fused BFL module as one LoRA of rank n*r: down = the n downs
stacked, up = block-diagonal (each split's up in its own rows and rank columns, zeros elsewhere), and
alpha = n * alpha so that alpha / rank (the scale every loader applies) is unchanged. This is the "sparse"
layout sd-scripts writes with split_qkv, which diffusers' kohya Flux converter recognises and splits back,
and which ComfyUI/Forge apply as the exact sum of the split LoRAs.

sd-scripts' default Flux LoRA covers every Linear of the double and single blocks (10 and 3 BFL modules);
the same set is trained here (FLUX_TARGET_LEAVES).
"""

from __future__ import annotations

import re

import torch

DOUBLE = {  # diffusers leaf in transformer_blocks.N -> (BFL name, split index, splits)
    "norm1.linear": ("img_mod_lin", 0, 1), "norm1_context.linear": ("txt_mod_lin", 0, 1),
    "attn.to_q": ("img_attn_qkv", 0, 3), "attn.to_k": ("img_attn_qkv", 1, 3), "attn.to_v": ("img_attn_qkv", 2, 3),
    "attn.add_q_proj": ("txt_attn_qkv", 0, 3), "attn.add_k_proj": ("txt_attn_qkv", 1, 3),
    "attn.add_v_proj": ("txt_attn_qkv", 2, 3),
    "attn.to_out.0": ("img_attn_proj", 0, 1), "attn.to_add_out": ("txt_attn_proj", 0, 1),
    "ff.net.0.proj": ("img_mlp_0", 0, 1), "ff.net.2": ("img_mlp_2", 0, 1),
    "ff_context.net.0.proj": ("txt_mlp_0", 0, 1), "ff_context.net.2": ("txt_mlp_2", 0, 1),
}
SINGLE = {  # diffusers leaf in single_transformer_blocks.N
    "attn.to_q": ("linear1", 0, 4), "attn.to_k": ("linear1", 1, 4), "attn.to_v": ("linear1", 2, 4),
    "proj_mlp": ("linear1", 3, 4), "proj_out": ("linear2", 0, 1), "norm.linear": ("modulation_lin", 0, 1),
}
_BLOCK = re.compile(r"^(transformer_blocks|single_transformer_blocks)\.(\d+)\.(.+)$")


def bfl_name(path: str) -> tuple[str, int, int]:
    """(sd-scripts module name, split index, number of splits) of a diffusers Flux transformer Linear."""
    m = _BLOCK.match(path)
    table = None if m is None else DOUBLE if m.group(1) == "transformer_blocks" else SINGLE
    if table is None or m.group(3) not in table:
        raise ValueError(f"{path} is not a Flux block Linear that sd-scripts' Flux LoRA names")
    name, index, splits = table[m.group(3)]
    kind = "double_blocks" if table is DOUBLE else "single_blocks"
    return f"lora_unet_{kind}_{m.group(2)}_{name}", index, splits


def transformer_targets(transformer: torch.nn.Module) -> list[str]:
    """The diffusers paths of every Linear sd-scripts' Flux LoRA adapts, present in `transformer`."""
    out = []
    for path, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear):
            try:
                bfl_name(path)
            except ValueError:
                continue
            out.append(path)
    return sorted(out)


def fuse(splits: list[tuple[torch.Tensor, torch.Tensor]], alpha: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """n split LoRAs (down [r, in], up [out_i, r]) of one fused Linear -> (down [n*r, in], block-diagonal up
    [sum out_i, n*r], alpha * n): the same delta as the splits, under the same alpha / rank scale."""
    downs = [d for d, _ in splits]
    rank = downs[0].shape[0]
    up = torch.zeros(sum(u.shape[0] for _, u in splits), rank * len(splits), dtype=splits[0][1].dtype)
    row = 0
    for j, (_, u) in enumerate(splits):
        up[row:row + u.shape[0], j * rank:(j + 1) * rank] = u
        row += u.shape[0]
    return torch.cat(downs, dim=0), up, alpha * len(splits)


def split_down(down: torch.Tensor, n: int) -> list[torch.Tensor]:
    """The inverse of fuse for a fused down [n*r, in]: each split's down [r, in]."""
    rank = down.shape[0] // n
    return [down[i * rank:(i + 1) * rank] for i in range(n)]


def split_up(up: torch.Tensor, rows: list[int]) -> list[torch.Tensor]:
    """The inverse of fuse for a block-diagonal up [sum rows, n*r]: each split's diagonal block [rows_i, r]."""
    rank, out, row = up.shape[1] // len(rows), [], 0
    for i, n in enumerate(rows):
        out.append(up[row:row + n, i * rank:(i + 1) * rank])
        row += n
    return out


def by_fused_module(items: dict) -> dict[str, list]:
    """diffusers path -> item, grouped as sd-scripts' module name -> its splits' items in split order (None where
    a split has no item)."""
    grouped: dict[str, list] = {}
    for path, item in items.items():
        name, index, n = bfl_name(path)
        grouped.setdefault(name, [None] * n)[index] = item
    return grouped


def unet_state_dict(modules: dict, down_key: str, up_key: str, alpha_key: str) -> dict[str, torch.Tensor]:
    """sd-scripts-named tensors for the transformer's adapters (`modules`: path -> LoraTensors)."""
    out = {}
    for name, parts in by_fused_module(modules).items():
        if any(p is None for p in parts):
            raise ValueError(f"{name}: only some of its {len(parts)} diffusers Linears carry a LoRA")
        if len(parts) == 1:
            down, up, alpha = parts[0].down, parts[0].up, parts[0].alpha
        else:
            down, up, alpha = fuse([(p.down.cpu(), p.up.cpu()) for p in parts], parts[0].alpha)
        out[f"{name}.{down_key}"] = down.detach().to("cpu", copy=True).contiguous()
        out[f"{name}.{up_key}"] = up.detach().to("cpu", copy=True).contiguous()
        out[f"{name}.{alpha_key}"] = torch.tensor(alpha, dtype=torch.float32)
    return out
