"""Continuing from a Flux LoRA file: each fused BFL module of the file given back to the diffusers Linears Danlu
trains (a double block's img/txt_attn_qkv: q, k, v; a single block's linear1: q, k, v and the MLP input).

A fused module comes in one of two layouts, told apart by its shapes (n splits, r = this network's rank per split):
- block-diagonal: down [n*r, in], up [sum out_i, n*r] with zeros outside its diagonal blocks. Danlu writes it
  (flux_names.fuse, alpha x n) and so does sd-scripts' lora_flux with split_qkv=True. Split i gets down rows
  i*r..(i+1)*r, its diagonal block of up and alpha / n.
- shared down: down [r, in], up [sum out_i, r] (sd-scripts' default, split_qkv=False; also LyCORIS files of a BFL
  model). Every split gets the same down, its own rows of up and the same alpha.
Either way the splits' deltas (alpha_i / r) up_i @ down_i, stacked, are exactly the file's delta
(alpha / rank) up @ down: what ComfyUI, Forge, diffusers and sd-scripts' own inference apply to the fused Linear.
(sd-scripts' split_qkv=True keeps alpha unchanged when it fuses, so every loader applies 1/n of the scale it trained
q/k/v with, its issue #2204; continuing starts from what the file renders, as those loaders show it, and the run
says so: split_qkv_note.)
A file whose rank fits neither layout is refused naming the network_dim that fits it.
The same holds for each factor pair of a LyCORIS module (LoCon: lora_down/lora_up; LoHa: hada_w1_b/hada_w1_a and
hada_w2_b/hada_w2_a): row block i of a LoHa's (A1 B1) * (A2 B2) is split i's own Hadamard product.
"""

from __future__ import annotations

import re

import torch

from trainer.networks.flux_names import split_down, split_up

LORA_PAIRS = (("lora_down.weight", "lora_up.weight"),)
ALPHA = "alpha"
# U-Net / text-encoder names that only SD1.x/2.x/SDXL files have (Flux files name BFL blocks and lora_te1_/te3_).
_SD_NAMES = re.compile(r"^lora_unet_(down_blocks|up_blocks|mid_block|input_blocks|output_blocks|middle_block)_"
                       r"|^lora_te_|^lora_te2_")


def check_flux_file(keys) -> None:
    """ValueError when a file's keys are an SD1.5/SD2/SDXL LoRA's, not a Flux one's, or a DoRA file's: the networks
    that call this (networks.lora and lycoris' LoCon/LoHa without dora_wd) would drop its magnitudes, and with
    dora_wd a Flux run is a flux_sliced network, which loads its own files."""
    names = {key.partition(".")[0] for key in keys}
    sd = sorted(n for n in names if _SD_NAMES.match(n))
    if sd:
        raise ValueError(f"this is not a Flux LoRA: {len(sd)} of its modules have SD1.5/SDXL names (e.g. {sd[:2]}); "
                         "continue a LoRA trained on Flux.1 (lora_unet_double_blocks_..., lora_unet_single_blocks_...), "
                         "or clear network.network_weights")
    if any(key.endswith(".dora_scale") for key in keys):
        raise ValueError("this is a DoRA file; continue it with network_args dora_wd=True (its dora_scale keys hold "
                         "the magnitudes this network would drop)")


def _block_diagonal(up: torch.Tensor, rows: list[int], rank: int) -> bool:
    """Whether `up` [sum rows, n*rank] is zero outside its n diagonal blocks [rows_i, rank]."""
    mask = torch.ones(up.shape, dtype=torch.bool)
    row = 0
    for i, n in enumerate(rows):
        mask[row:row + n, i * rank:(i + 1) * rank] = False
        row += n
    return not up[mask].any()


def _layout(name: str, parts: dict[str, torch.Tensor], pairs, rank: int, rows: list[int]) -> str:
    """"block" or "shared" for the file's fused module `name`; ValueError when its shapes fit neither."""
    for down_key, up_key in pairs:
        for key in (down_key, up_key):
            if key not in parts:
                raise ValueError(f"{name} has no {key}")
        if parts[up_key].shape[0] != sum(rows):
            raise ValueError(f"{name}: the file's {up_key} has {parts[up_key].shape[0]} output rows, this model's "
                             f"fused Linear has {sum(rows)} (a LoRA for a Flux model of another size?)")
    file_rank, n = parts[pairs[0][0]].shape[0], len(rows)
    ups = [parts[u] for _, u in pairs]
    if file_rank == n * rank and all(_block_diagonal(u, rows, rank) for u in ups):
        return "block"
    if file_rank == rank:
        return "shared"
    block = file_rank % n == 0 and all(_block_diagonal(u, rows, file_rank // n) for u in ups)
    fits, what = ((file_rank // n, f"block-diagonal: rank {file_rank // n} for each of its {n} parts") if block
                  else (file_rank, "one down shared by its parts"))
    raise ValueError(f"{name}: the file's rank {file_rank} ({what}) does not fit this network's rank {rank} per "
                     f"part; set network.network_dim = {fits}")


def split_fused(name: str, parts: dict[str, torch.Tensor], rank: int, rows: list[int],
                pairs=LORA_PAIRS) -> list[dict[str, torch.Tensor]]:
    """The file's tensors of one fused module (suffix -> tensor) as each split's tensors, alpha a 0-d tensor.
    `rank`: this network's rank per split; `rows`: each split's output width."""
    layout, n = _layout(name, parts, pairs, rank, rows), len(rows)
    file_rank = parts[pairs[0][0]].shape[0]
    # a file without alpha means alpha = rank (sd-scripts' convention): the scale is 1
    alpha = float(parts[ALPHA].item()) if ALPHA in parts else float(file_rank)
    out: list[dict[str, torch.Tensor]] = [{ALPHA: torch.tensor(alpha / n if layout == "block" else alpha)}
                                          for _ in rows]
    for down_key, up_key in pairs:
        down, up = parts[down_key], parts[up_key]
        downs = split_down(down, n) if layout == "block" else [down] * n
        ups = split_up(up, rows) if layout == "block" else list(torch.split(up, rows, dim=0))
        for split, d, u in zip(out, downs, ups, strict=True):
            split[down_key], split[up_key] = d.contiguous(), u.contiguous()
    return out


def take_fused(groups: dict[str, dict[str, torch.Tensor]], lora_set) -> tuple[dict, dict]:
    """A Flux file's modules (kohya name -> suffix -> tensor) for `lora_set` (a LoraSet): the groups that are not
    fused modules, and diffusers path -> LoraTensors for the splits of those that are."""
    from trainer.networks.flux_names import by_fused_module
    from trainer.networks.inject import UNET, LoraTensors

    if UNET not in lora_set.models:
        return groups, {}
    modules = lora_set.module_tensors()[UNET]
    fused = {name: paths for name, paths in by_fused_module({p: p for p in modules}).items() if len(paths) > 1}
    rest, out = {}, {}
    for name, parts in groups.items():
        if name not in fused:
            rest[name] = parts
            continue
        paths = fused[name]
        if None in paths:  # flux_names.unet_state_dict refuses to write such a network too
            raise ValueError(f"{name}: only some of its {len(paths)} diffusers Linears carry a LoRA in this network")
        (down_key, up_key), = LORA_PAIRS
        splits = split_fused(name, parts, modules[paths[0]].down.shape[0], [modules[p].up.shape[0] for p in paths])
        out.update({p: LoraTensors(s[down_key], s[up_key], float(s[ALPHA])) for p, s in zip(paths, splits, strict=True)})
    return rest, out


def split_qkv_note(metadata: dict[str, str]) -> str | None:
    """What continuing an sd-scripts split_qkv=True file means, from its header; None for other files.

    sd-scripts fuses its split q/k/v LoRAs into rank n*r modules but keeps the alpha of rank r
    (kohya-ss/sd-scripts issue #2204), so every loader applies 1/n of the scale it trained and previewed them at.
    Danlu's own files (danlu_version in the header) write alpha x n and mean what they trained."""
    import json

    if "danlu_version" in metadata:
        return None
    try:
        args = json.loads(metadata.get("ss_network_args") or "{}")
    except ValueError:
        return None
    if not isinstance(args, dict) or str(args.get("split_qkv", "")).strip().lower() != "true":
        return None
    return ("sd-scripts trained this file with split_qkv=True and kept alpha unchanged when it fused q/k/v (rank x3, "
            "single blocks' linear1 x4), so ComfyUI, Forge and diffusers apply those modules at 1/3 (linear1: 1/4) of "
            "the strength sd-scripts trained and previewed them at (sd-scripts issue #2204); this run continues from "
            "what the file renders there")
