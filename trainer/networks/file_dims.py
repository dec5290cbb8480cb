"""A LoRA file's own network size, for network.dim_from_weights (sd-scripts' --dim_from_weights): each module's rank
(its lora_down's first dimension) and alpha (its `.alpha`; without one, the rank, as sd-scripts reads such a file),
so a run continues the network the file holds instead of the one network_dim/network_alpha/conv_dim/conv_alpha
describe.

networks.lora (trainer.networks.inject, peft) takes every module's own rank and alpha, and adapts only the modules
the file has, as sd-scripts' create_network_from_weights does. The networks lycoris-lora builds (networks.lora with
network_args, networks.dylora, lycoris.kohya's locon and dylora) take one rank for every linear layer and one for
every 3x3 convolution (`uniform`); their module set is their preset's, so a file that lacks some of them is refused
when it loads. A 3x3 convolution's rank is conv_dim's; a 1x1 convolution (SD2's proj_in) counts as linear, as in
sd-scripts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

DOWN, ALPHA = "lora_down.weight", "alpha"
DYNAMIC = "Dynamic"  # sd-scripts' resize_lora writes this as ss_network_dim/alpha when ranks differ per module
FIELD = "network.dim_from_weights"


def _short(alpha: float) -> float:
    """An alpha as it was written (a float32 0.1 is 0.1, not 0.10000000149)."""
    return float(f"{alpha:.7g}")


@dataclass(frozen=True)
class FileDims:
    """kohya module name -> (rank, alpha) of every lora_down/lora_up module of a file; `conv`: the 3x3 ones."""

    modules: dict[str, tuple[int, float]]
    conv: frozenset[str]

    @classmethod
    def of(cls, state_dict: dict[str, torch.Tensor]) -> FileDims:
        """Raises ValueError when the file has no lora_down weights to read a rank from (a LoHa, LoKr or OFT file)."""
        downs = {key.partition(".")[0]: t for key, t in state_dict.items() if key.partition(".")[2] == DOWN}
        if not downs:
            raise ValueError(f"{FIELD}: the file has no lora_down weights to read ranks from (a LoHa, LoKr or OFT "
                             "file?); turn dim_from_weights off and set network_dim/conv_dim to the file's")
        modules = {}
        for name, down in downs.items():
            alpha = state_dict.get(f"{name}.{ALPHA}")
            modules[name] = (int(down.shape[0]), float(alpha.item()) if alpha is not None else float(down.shape[0]))
        conv = frozenset(n for n, d in downs.items() if d.dim() == 4 and tuple(d.shape[2:]) != (1, 1))
        return cls(modules, conv)

    def _values(self, conv: bool, index: int) -> set:
        return {v[index] for name, v in self.modules.items() if (name in self.conv) == conv}

    def dims(self) -> dict[str, Any]:
        """network_dim, network_alpha, conv_dim, conv_alpha as the file has them: one value, "Dynamic" where its
        modules differ (sd-scripts' word for that in a header), None for conv_* without 3x3 convolutions."""
        def one(conv: bool, index: int):
            values = self._values(conv, index)
            if not values:
                return None
            if len(values) > 1:
                return DYNAMIC
            value = values.pop()
            return value if index == 0 else _short(value)

        return {"network_dim": one(False, 0), "network_alpha": one(False, 1), "conv_dim": one(True, 0),
                "conv_alpha": one(True, 1)}

    def uniform(self, n, network: str):
        """The network settings `n` with the file's one linear rank and alpha (and conv's, or conv_dim 0) for a network
        that takes a single rank per kind; ValueError naming the ranks when the file's differ."""
        for conv, what in ((False, "linear layers"), (True, "3x3 convolutions")):
            ranks = self._values(conv, 0)
            if len(ranks) > 1:
                raise ValueError(f"{FIELD}: the file's {what} have ranks {sorted(ranks)} (a resized LoRA?), and "
                                 f"{network} takes one rank for all of them; only networks.lora without network_args "
                                 "follows each layer's own rank")
        linear = [v for name, v in self.modules.items() if name not in self.conv]
        conv = [v for name, v in self.modules.items() if name in self.conv]
        if not linear:
            raise ValueError(f"{FIELD}: the file has only convolution layers; {network} also adapts the linear ones")
        # one module's alpha of each kind: the file's own replace them module by module once it loads
        return n.model_copy(update={"network_dim": linear[0][0], "network_alpha": linear[0][1],
                                    "conv_dim": conv[0][0] if conv else 0,
                                    "conv_alpha": conv[0][1] if conv else n.conv_alpha})


def layers_by_part(dims: FileDims, family: str, unet, text_encoders: list, *, train_unet: bool,
                   train_text_encoder: bool) -> dict[str, dict[str, tuple[int, float]]]:
    """component -> module path -> (rank, alpha): where networks.lora puts each of the file's modules, among the layers
    it can adapt (trainer.networks.targets, convolutions included). ValueError naming modules it cannot place, and a
    trained part the file has no module of (the network is the file's: that part would train nothing)."""
    from trainer.networks import targets
    from trainer.networks.inject import TEXT_ENCODER_NAMES, UNET
    from trainer.networks.kohya_format import module_namer

    name = module_namer(family, unet)
    parts = {UNET: unet} if train_unet else {}
    if train_text_encoder:
        parts.update({c: te for c, te in zip(TEXT_ENCODER_NAMES, text_encoders, strict=False) if te is not None})
    places = {}
    for component, model in parts.items():
        paths = (targets.unet_linear_targets(model) + targets.unet_conv_targets(model) if component == UNET
                 else targets.text_encoder_targets(model))
        places.update({name(component, path): (component, path) for path in paths})
    unknown = sorted(set(dims.modules) - set(places))
    if unknown:
        raise ValueError(f"network.network_weights: modules networks.lora does not have here ({len(unknown)}): "
                         f"{unknown[:8]}")
    out: dict[str, dict[str, tuple[int, float]]] = {}
    for module, value in dims.modules.items():
        component, path = places[module]
        out.setdefault(component, {})[path] = value
    lacking = [c for c in parts if c not in out]
    if lacking:
        fix = ("training.network_train_text_encoder_only" if UNET in lacking else "training.network_train_unet_only")
        raise ValueError(f"{FIELD}: the file has no layers of {' or '.join(lacking)}, which this run trains, and the "
                         f"network is the file's: turn on {fix}, or continue a file that has them")
    return out
