"""The network_args sd-scripts' networks/lora_flux.py takes that apply to Danlu's Flux LoRA.

- rank_dropout / module_dropout: as lora_flux's LoRAModule applies them while training (every adapted layer,
  transformer and text encoders): rank_dropout zeroes rank activations per sample and scales the rest by
  1 / (1 - p); module_dropout skips a layer's adapter for a whole step with probability p. Danlu trains each
  diffusers Linear of a fused BFL module (q, k, v) as its own LoRA, so module_dropout draws per diffusers Linear
  (as lora_flux's own split_qkv modules draw rank masks per split).
- train_blocks (all/single/double), train_double_block_indices / train_single_block_indices ("all", "none",
  "0-3,7"): which transformer blocks carry adapters; the others are neither trained nor saved.
- split_qkv=True: what Danlu always trains (one LoRA per q/k/v); False (lora_flux's fused qkv LoRA) is refused.
They are read here, where peft's LoRA layers get them as forward hooks beside network_dropout (inject.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

FIELD = "network.network_args"
FLUX_LORA_ARGS = ("rank_dropout", "module_dropout", "train_blocks", "train_double_block_indices",
                  "train_single_block_indices", "split_qkv")
TRAIN_BLOCKS = {"all": ("transformer_blocks.", "single_transformer_blocks."),
                "double": ("transformer_blocks.",), "single": ("single_transformer_blocks.",)}


@dataclass(frozen=True)
class FluxLoraArgs:
    rank_dropout: float = 0.0
    module_dropout: float = 0.0
    train_blocks: str = "all"
    double_indices: str = "all"
    single_indices: str = "all"


def _rate(args: dict[str, str], key: str) -> float:
    try:
        value = float(args.get(key, 0) or 0)
    except ValueError:
        raise ValueError(f"{FIELD}: {key}={args[key]!r} is not a number (e.g. {key}=0.1)") from None
    if not 0 <= value < 1:
        raise ValueError(f"{FIELD}: {key}={value} must be at least 0 and below 1")
    return value


def parse_flux_args(items) -> FluxLoraArgs:
    """network_args -> FluxLoraArgs; ValueError naming any key or value Flux's networks.lora does not take."""
    from trainer.networks.lycoris_args import flag, refuse_others, split_args

    args = split_args(items)
    refuse_others(args, FLUX_LORA_ARGS, "networks.lora on Flux",
                  "DoRA: dora_wd=True, with module_dropout/rank_dropout only; LoCon/LoHa/LoKr: network_module "
                  "lycoris.kohya")
    if "split_qkv" in args and not flag(args, "split_qkv"):
        raise ValueError(f"{FIELD}: split_qkv=False (one LoRA on the fused q/k/v) is not supported; Danlu trains q, "
                         "k and v separately (split_qkv=True): remove split_qkv")
    blocks = args.get("train_blocks", "all").strip().lower()
    if blocks not in TRAIN_BLOCKS:
        raise ValueError(f"{FIELD}: train_blocks={args['train_blocks']!r} must be one of {', '.join(TRAIN_BLOCKS)}")
    return FluxLoraArgs(rank_dropout=_rate(args, "rank_dropout"), module_dropout=_rate(args, "module_dropout"),
                        train_blocks=blocks, double_indices=args.get("train_double_block_indices", "all"),
                        single_indices=args.get("train_single_block_indices", "all"))


def _selected(selection: str, total: int, key: str) -> set[int]:
    """lora_flux's block selection ("all", "none", "0,2-4") -> the chosen indices; out of range is an error."""
    text = selection.strip().lower()
    if text == "all":
        return set(range(total))
    if text in ("none", ""):
        return set()
    chosen = set()
    for part in text.split(","):
        try:
            start, _, end = part.partition("-")
            first, last = int(start), int(end or start)
        except ValueError:
            raise ValueError(f"{FIELD}: {key}={selection!r} is not a block list like 0,2-4 (or all, none)") from None
        if not 0 <= first <= last < total:
            raise ValueError(f"{FIELD}: {key}={selection!r}: {part} is outside blocks 0-{total - 1} of this model")
        chosen.update(range(first, last + 1))
    return chosen


def select_targets(paths: list[str], transformer: nn.Module, opts: FluxLoraArgs) -> list[str]:
    """The transformer Linear paths that get adapters under train_blocks and the block index lists."""
    double = _selected(opts.double_indices, len(transformer.transformer_blocks), "train_double_block_indices")
    single = _selected(opts.single_indices, len(transformer.single_transformer_blocks), "train_single_block_indices")
    kinds = TRAIN_BLOCKS[opts.train_blocks]
    out = []
    for path in paths:
        kind, index = path.split(".")[:2]
        chosen = double if kind == "transformer_blocks" else single
        if f"{kind}." in kinds and int(index) in chosen:
            out.append(path)
    if not out:
        raise ValueError(f"{FIELD}: train_blocks and the block index lists leave no transformer block to train")
    return out


def _dropout_hook(rank_p: float, module_p: float):
    """lora_flux's module and rank dropout on a LoRA layer's down output (training only)."""
    def hook(module: nn.Module, inputs, out: torch.Tensor) -> torch.Tensor:
        if not module.training:
            return out
        if module_p and torch.rand(1).item() < module_p:
            return out * 0  # this step the layer adds nothing (and gets no gradient)
        if rank_p:
            mask = torch.rand(out.shape[0], out.shape[-1], device=out.device) > rank_p
            mask = mask.view(out.shape[0], *[1] * (out.dim() - 2), out.shape[-1]).to(out.dtype)
            return out * mask / (1 - rank_p)  # the rank kept scales up, as lora_flux's scale does
        return out

    return hook


def add_dropout_hooks(lora_set, opts: FluxLoraArgs) -> None:
    """Give every adapted layer of `lora_set` (a LoraSet) rank/module dropout, if either is set."""
    if not (opts.rank_dropout or opts.module_dropout):
        return
    lora_set.hook_down_outputs(_dropout_hook(opts.rank_dropout, opts.module_dropout))
