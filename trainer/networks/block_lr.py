"""Block-wise learning rates (sd-scripts' down_lr_weight / mid_lr_weight / up_lr_weight) for U-Net adapters.

Each U-Net module belongs to a block, read off its file name as the family numbers its blocks (SPEC.lora_blocks in
trainer/families/<name>: SD1.x has 12 down, 1 middle and 12 up blocks, SDXL 9, 3 and 9, as sd-scripts'
networks/lora.py counts them). A block's learning rate is the U-Net rate times its weight; a weight at or below
block_lr_zero_threshold (or 0) leaves the block untrained. Modules outside the blocks (time embedding, conv_out)
keep weight 1.
"""

from __future__ import annotations

import math

from trainer.families import all_specs, get_spec

PRESETS = ("sine", "cosine", "linear", "reverse_linear", "zeros")


def _preset(name: str, count: int) -> list[float]:
    """sd-scripts' named curves over `count` blocks, `name+0.1` adding 0.1 to every weight."""
    curve, _, base = name.partition("+")
    add = float(base) if base else 0.0
    steps = [i / (count - 1) for i in range(count)]
    values = {
        "sine": [math.sin(math.pi * s / 2) for s in steps],
        "cosine": [math.sin(math.pi * s / 2) for s in reversed(steps)],
        "linear": steps,
        "reverse_linear": list(reversed(steps)),
        "zeros": [0.0] * count,
    }[curve]
    return [v + add for v in values]


def parse_weights(text: str, count: int, field: str, presets: bool = True) -> list[float] | None:
    """A preset name (optionally `+offset`; not for mid_lr_weight, presets=False) or up to `count` comma-separated
    numbers (the rest stay 1)."""
    text = text.strip()
    if not text:
        return None
    try:
        if presets and text.partition("+")[0] in PRESETS:
            return _preset(text, count)
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"network.{field}: {text!r} is neither {count} comma-separated numbers nor one of "
                         f"{', '.join(PRESETS)}" if presets else
                         f"network.{field}: {text!r} is not {count} comma-separated number(s)") from None
    if len(values) > count or any(v < 0 for v in values):
        raise ValueError(f"network.{field}: give at most {count} weights of 0 or more for this model family, "
                         f"got {len(values)}: {text!r}")
    return values + [1.0] * (count - len(values))


def _blocks(family: str):
    blocks = get_spec(family).lora_blocks
    if blocks is None:
        with_blocks = [spec.name for spec in all_specs() if spec.lora_blocks]
        raise ValueError(f"network.enable_block_weights: block weights are defined for {', '.join(with_blocks)}, "
                         f"not {family}")
    return blocks


def block_of(name: str, family: str) -> tuple[str, int] | None:
    """("down"|"mid"|"up", index) of a U-Net module's file name, or None outside the blocks."""
    if name.startswith("oft_unet_"):  # networks.oft names the same modules under its own prefix
        name = "lora_unet_" + name.removeprefix("oft_unet_")
    return _blocks(family).block_of(name)


def block_weights(n, family: str) -> dict[str, list[float]]:
    """down/mid/up weights from the network group (missing lists mean weight 1)."""
    blocks = _blocks(family)
    count, mids = blocks.count, blocks.mid
    return {"down": parse_weights(n.down_lr_weight, count, "down_lr_weight") or [1.0] * count,
            "mid": parse_weights(n.mid_lr_weight, mids, "mid_lr_weight", presets=False) or [1.0] * mids,
            "up": parse_weights(n.up_lr_weight, count, "up_lr_weight") or [1.0] * count}


def unet_groups(modules: dict[str, list], family: str, n, lr: float) -> tuple[list[dict], list[str]]:
    """Optimizer groups for U-Net modules (file name -> trainable params), one per distinct block weight.

    Parameters of blocks whose weight is 0 or at most block_lr_zero_threshold stop requiring gradients."""
    weights = block_weights(n, family)
    by_weight: dict[float, list] = {}
    for name, params in modules.items():
        block = block_of(name, family)
        weight = weights[block[0]][block[1]] if block else 1.0
        if weight <= n.block_lr_zero_threshold or weight == 0:
            for p in params:
                p.requires_grad_(False)
            continue
        by_weight.setdefault(weight, []).extend(params)
    ordered = sorted(by_weight.items(), key=lambda kv: -kv[0])
    groups = [{"params": params, "lr": lr * weight} for weight, params in ordered]
    names = ["unet" if weight == 1.0 else f"unet x{weight:g}" for weight, _ in ordered]
    return groups, names
