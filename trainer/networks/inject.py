"""LoRA adapters injected into a U-Net and its text encoders with peft, frozen base, kohya-style scale.

peft's `inject_adapter_in_model` is used directly (not transformers' `model.add_adapter`, which in
transformers 5.24 demands a newer peft than the registry has). Each adapted layer computes
`base(x) + (alpha / rank) * up(dropout(down(x)))`: the scale sd-scripts and the WebUIs apply, and network_dropout
where sd-scripts puts it (on the rank activations, while training; peft's own lora_dropout acts on the input).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model, set_peft_model_state_dict
from peft.tuners.lora import LoraLayer
from torch import nn

from trainer.networks import targets

ADAPTER = "danlu"
UNET = "unet"
TEXT_ENCODER_NAMES = ("text_encoder", "text_encoder_2")


class LoraTensors(NamedTuple):
    """One adapted layer: down [r, in(, k, k)], up [out, r(, 1, 1)] and the true alpha."""

    down: torch.Tensor
    up: torch.Tensor
    alpha: float


def _pattern(names: list[str]) -> str:
    """One regex that matches exactly these module paths (peft matches patterns against full paths)."""
    return "|".join(re.escape(n) for n in names)


def _lora_config(linear: list[str], conv: list[str], dim: int, alpha: float, dropout: float,
                 conv_dim: int | None, conv_alpha: float | None, init_weights: bool) -> LoraConfig:
    rank_pattern, alpha_pattern = {}, {}
    if conv:
        rank_pattern = {_pattern(conv): conv_dim}
        alpha_pattern = {_pattern(conv): conv_alpha}
    return LoraConfig(
        r=dim, lora_alpha=alpha, lora_dropout=dropout, target_modules=linear + conv,
        rank_pattern=rank_pattern, alpha_pattern=alpha_pattern, init_lora_weights=init_weights, bias="none",
    )


def _file_config(layers: dict[str, tuple[int, float]], init_weights: bool) -> LoraConfig:
    """A config for exactly these module paths, each with its own (rank, alpha) (dim_from_weights)."""
    ranks: dict[int, list[str]] = {}
    alphas: dict[float, list[str]] = {}
    for path, (rank, alpha) in layers.items():
        ranks.setdefault(rank, []).append(path)
        alphas.setdefault(alpha, []).append(path)
    rank, alpha = next(iter(layers.values()))
    return LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=sorted(layers),
        rank_pattern={_pattern(paths): r for r, paths in ranks.items()},
        alpha_pattern={_pattern(paths): a for a, paths in alphas.items()}, init_lora_weights=init_weights, bias="none",
    )


def _inject(model: nn.Module, config: LoraConfig) -> None:
    inject_adapter_in_model(config, model, adapter_name=ADAPTER)


@dataclass
class LoraSet:
    """The adapters of one training run, keyed by component (`unet`, `text_encoder`, `text_encoder_2`)."""

    models: dict[str, nn.Module]  # only the components that carry adapters
    unet: nn.Module | None = None  # kept even when not trained: SDXL names are derived from its structure
    dim: int = 0
    alpha: float = 0.0
    conv_dim: int | None = None
    conv_alpha: float | None = None
    adapter_name: str = ADAPTER
    kind: str = "networks.lora"
    _scale: float = field(default=1.0, repr=False)

    def layers(self, component: str) -> dict[str, LoraLayer]:
        """Module path -> peft LoRA layer holding this run's adapter, for one component."""
        model = self.models[component]
        return {
            name: module for name, module in model.named_modules()
            if isinstance(module, LoraLayer) and self.adapter_name in module.lora_A
        }

    def hook_down_outputs(self, hook) -> None:
        """Run `hook` (a forward hook) on every adapted layer's lora_down output, where sd-scripts' dropouts act."""
        for component in self.models:
            for layer in self.layers(component).values():
                layer.lora_A[self.adapter_name].register_forward_hook(hook)

    def _params(self, components: list[str]) -> list[nn.Parameter]:
        return [p for c in components if c in self.models
                for p in self.models[c].parameters() if p.requires_grad]

    def unet_params(self) -> list[nn.Parameter]:
        return self._params([UNET])

    def text_encoder_params(self, component: str | None = None) -> list[nn.Parameter]:
        """Every text encoder's adapter parameters, or one encoder's ("text_encoder_2")."""
        return self._params([component] if component else list(TEXT_ENCODER_NAMES))

    def parameters(self) -> list[nn.Parameter]:
        return self.unet_params() + self.text_encoder_params()

    def set_scale(self, weight: float) -> None:
        """Multiply every adapter's alpha/rank scale by `weight` (0 = base model, 1 = as trained)."""
        for component in self.models:
            for layer in self.layers(component).values():
                layer.set_scale(self.adapter_name, weight)
        self._scale = weight

    def module_tensors(self) -> dict[str, dict[str, LoraTensors]]:
        """component -> module path -> (down, up, alpha), detached views of the live weights."""
        out: dict[str, dict[str, LoraTensors]] = {}
        for component in self.models:
            out[component] = {
                name: LoraTensors(layer.lora_A[self.adapter_name].weight.detach(),
                                  layer.lora_B[self.adapter_name].weight.detach(),
                                  float(layer.lora_alpha[self.adapter_name]))
                for name, layer in self.layers(component).items()
            }
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        """peft-format weights of every component, keys prefixed with the component name."""
        out = {}
        for component, model in self.models.items():
            sd = get_peft_model_state_dict(model, adapter_name=self.adapter_name)
            out.update({f"{component}.{k}": v for k, v in sd.items()})
        return out

    def load_module_tensors(self, tensors: dict[str, dict[str, LoraTensors]],
                            names: dict[tuple[str, str], str] | None = None) -> None:
        """Copy weights and alphas in, after checking names and shapes against the injected layers.

        `names` ((component, path) -> file name) lets error messages use the names the file uses.
        """
        check_against_layers(self, tensors, names)
        for component, modules in tensors.items():
            peft_sd = {}
            layers = self.layers(component)
            for name, t in modules.items():
                peft_sd[f"{name}.lora_A.weight"] = t.down
                peft_sd[f"{name}.lora_B.weight"] = t.up
                _set_alpha(layers[name], self.adapter_name, t.alpha, self._scale)
            result = set_peft_model_state_dict(self.models[component], peft_sd, adapter_name=self.adapter_name)
            if result.unexpected_keys:
                raise ValueError(f"peft did not place {sorted(result.unexpected_keys)[:5]}")

    def module_counts(self) -> dict[str, int]:
        return {part: len(self.layers(part)) for part in self.models}

    def unet_modules(self, family: str = "sd15") -> dict[str, list[nn.Parameter]]:
        """U-Net file module name -> its trainable parameters (block-wise learning rates group by these)."""
        from trainer.networks.kohya_format import kohya_names

        if UNET not in self.models:
            return {}
        names = kohya_names(self, family)
        return {names[(UNET, path)]: [p for p in layer.parameters() if p.requires_grad]
                for path, layer in self.layers(UNET).items()}

    def apply_max_norm(self, limit: float) -> tuple[int, float, float]:
        """sd-scripts' scale_weight_norms after a step: (keys scaled, mean norm, max norm)."""
        from trainer.networks.max_norm import apply_max_norm

        layers = [(layer.lora_A[self.adapter_name].weight.data, layer.lora_B[self.adapter_name].weight.data,
                   layer.lora_alpha[self.adapter_name] / layer.r[self.adapter_name])
                  for component in self.models for layer in self.layers(component).values()]
        return apply_max_norm(layers, limit)

    def kohya_state_dict(self, family: str = "sd15") -> dict[str, torch.Tensor]:
        from trainer.networks.kohya_format import to_kohya_state_dict

        return to_kohya_state_dict(self, family)

    def load_weights(self, state_dict: dict[str, torch.Tensor], family: str = "sd15") -> None:
        """Continue from a file's tensors; a file of another network type is refused, naming both."""
        from trainer.networks.file_types import check_same_type

        check_same_type(state_dict, self.kind)
        self.load_kohya(state_dict, family)

    def load_kohya(self, source: str | Path | dict[str, torch.Tensor], family: str = "sd15") -> None:
        """Continue training from a kohya-format file or state dict (sd-scripts' network_weights).

        The file's alphas replace the configured ones, so the loaded network computes what the file says.
        Raises ValueError naming missing or unexpected modules, or layers whose rank/shape differs.
        """
        from trainer.networks.kohya_format import from_kohya_state_dict, kohya_names
        from trainer.networks.save import read_lora

        state_dict = source if isinstance(source, dict) else read_lora(source)[0]
        tensors = from_kohya_state_dict(state_dict, self, family=family)
        self.load_module_tensors(tensors, kohya_names(self, family))


def _set_alpha(layer: LoraLayer, adapter: str, alpha: float, weight: float) -> None:
    layer.lora_alpha[adapter] = alpha
    layer.set_scale(adapter, weight)


def _describe(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" ... (+{len(names) - limit} more)" if len(names) > limit else "")


def check_against_layers(lora_set: LoraSet, tensors: dict[str, dict[str, LoraTensors]],
                         names: dict[tuple[str, str], str] | None = None) -> None:
    """Raise one ValueError that names every missing/unexpected module and every rank/shape mismatch."""
    names = names or {}
    problems = []
    for component in sorted(set(tensors) - set(lora_set.models)):
        problems.append(f"weights for {component}, which is not being trained ({len(tensors[component])} modules)")
    for component in lora_set.models:
        layers, given = lora_set.layers(component), tensors.get(component, {})
        # a set: the diffusers Linears of one fused Flux module share its name
        missing = sorted({names.get((component, p), p) for p in set(layers) - set(given)})
        unexpected = sorted({names.get((component, p), p) for p in set(given) - set(layers)})
        if missing:
            problems.append(f"missing in the file for {component}: {_describe(missing)}")
        if unexpected:
            problems.append(f"unexpected in the file for {component}: {_describe(unexpected)}")
        for name in sorted(set(layers) & set(given)):
            want = (tuple(layers[name].lora_A[lora_set.adapter_name].weight.shape),
                    tuple(layers[name].lora_B[lora_set.adapter_name].weight.shape))
            got = (tuple(given[name].down.shape), tuple(given[name].up.shape))
            if want != got:
                problems.append(f"{names.get((component, name), name)}: file has down/up {got}, the network expects {want} "
                                f"(a different network_dim/conv_dim?)")
    if problems:
        raise ValueError("LoRA weights do not fit this network:\n  " + "\n  ".join(problems))


def _rank_dropout_hook(p: float):
    """sd-scripts' network_dropout: dropout on lora_down's output (the rank activations), in training only."""
    def hook(module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.dropout(output, p, module.training)

    return hook


def add_lora(unet: nn.Module, text_encoders: list, *, dim: int, alpha: float, dropout: float = 0.0,
             train_unet: bool = True, train_text_encoder: bool = True, conv_dim: int | None = None,
             conv_alpha: float | None = None, init_weights: bool = True,
             unet_targets: list[str] | None = None,
             layers: dict[str, dict[str, tuple[int, float]]] | None = None) -> LoraSet:
    """Freeze the models and inject LoRA adapters into the default sd-scripts module set.

    `text_encoders` is [te] for SD1.x/2.x or [te1, te2] for SDXL (None entries are skipped).
    `conv_dim` adds LoCon adapters to the U-Net's 3x3 convolutions with rank conv_dim and alpha
    conv_alpha (default: conv_dim). `init_weights=True` starts with up = 0, so the output equals the base.
    `unet_targets`: the denoiser's Linear paths when they are not an SD U-Net's (the Flux transformer's).
    `layers` (component -> module path -> (rank, alpha), trainer.networks.file_dims): adapt exactly these modules, each
    with its own rank and alpha, instead of the default set at dim/alpha and conv_dim/conv_alpha (dim_from_weights).
    """
    if dim < 1:
        raise ValueError(f"network dim must be >= 1, got {dim}")
    if conv_dim is not None and conv_alpha is None:
        conv_alpha = float(conv_dim)
    models: dict[str, nn.Module] = {}
    for model in [unet, *text_encoders]:
        if model is not None:
            model.requires_grad_(False)
    if layers is not None:
        for name, model in zip((UNET, *TEXT_ENCODER_NAMES), (unet, *text_encoders), strict=False):
            if layers.get(name):
                _inject(model, _file_config(layers[name], init_weights))
                models[name] = model
    elif train_unet:
        conv = targets.unet_conv_targets(unet) if conv_dim else []
        linear = unet_targets if unet_targets is not None else targets.unet_linear_targets(unet)
        config = _lora_config(linear, conv, dim, alpha, 0.0, conv_dim, conv_alpha, init_weights)
        _inject(unet, config)
        models[UNET] = unet
    if train_text_encoder and layers is None:
        for name, te in zip(TEXT_ENCODER_NAMES, text_encoders, strict=False):
            if te is None:
                continue
            _inject(te, _lora_config(targets.text_encoder_targets(te), [], dim, alpha, 0.0, None, None,
                                     init_weights))
            models[name] = te
    if not models:
        raise ValueError("nothing to train: train_unet and train_text_encoder are both off")
    lora_set = LoraSet(models=models, unet=unet, dim=dim, alpha=float(alpha), conv_dim=conv_dim,
                       conv_alpha=None if conv_alpha is None else float(conv_alpha))
    if dropout:
        lora_set.hook_down_outputs(_rank_dropout_hook(dropout))
    return lora_set
