"""The LyCORIS family (`lycoris.kohya`: LoCon, LoHa, LoKr, IA3, DyLoRA, diag-OFT, BOFT, GLoRA, full) through the
lycoris-lora package, saved with the `lora_unet_`/`lora_te_` names WebUI, Forge and ComfyUI users load.

lycoris-lora builds and trains the modules (`lycoris.kohya.create_network`); this file only chooses the preset,
checks network_args, and renames keys: lycoris names a module after its diffusers path (`lora_te_encoder_...`
for a transformers-5 CLIP, diffusers paths for SDXL), while files name it as sd-scripts does (`lora_te_text_model_
encoder_...`, SGM paths for SDXL), the same names plain LoRA files use (kohya_format.module_namer).
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass, field

import torch
from torch import nn

from trainer.networks.inject import TEXT_ENCODER_NAMES, UNET
from trainer.networks.lycoris_args import lycoris_kwargs

PRESET_PREFIX = "danlu:"


def _preset(name: str, unet: nn.Module, conv: bool, exclude: tuple[str, ...] = ()) -> str:
    """A lycoris preset, complete (every key set: the preset lives on the class between networks) and fixed for
    diffusers U-Nets: lycoris' presets name `time_embedding.linear_1/2` and also target the TimestepEmbedding
    class, which asserts on a duplicated name; the names alone cover those layers. `conv` False turns 3x3
    convolutions off (Danlu's conv_dim 0), whatever the preset says; `exclude` keeps modules whose path starts
    with one of these out."""
    import lycoris.kohya as lk
    from lycoris.config import PRESET
    from lycoris.utils.preset import read_preset

    preset = dict(PRESET[name]) if name in PRESET else read_preset(name)
    if preset is None:
        raise ValueError(f"network.network_args: preset={name!r} is neither a LyCORIS preset "
                         f"({', '.join(sorted(PRESET))}) nor a readable preset file")
    named_parents = {n.rpartition(".")[0] for n in preset.get("unet_target_name", []) if "." in n}
    parent_classes = {type(m).__name__ for n, m in unet.named_modules() if n in named_parents}
    full = {"enable_conv": True, "unet_target_module": [], "unet_target_name": [], "text_encoder_target_module": [],
            "text_encoder_target_name": [], "module_algo_map": {}, "name_algo_map": {}, "use_fnmatch": False,
            "exclude_name": [], **preset}
    full["unet_target_module"] = [c for c in full["unet_target_module"] if c not in parent_classes]
    full["enable_conv"] = bool(full["enable_conv"] and conv)
    full["exclude_name"] = [*full["exclude_name"], *exclude]
    key = f"{PRESET_PREFIX}{name}{'' if conv else ':noconv'}{':' + ','.join(exclude) if exclude else ''}"
    lk.PRESET[key] = full  # create_network takes presets by name; ours sit beside lycoris' own
    return key


@dataclass
class LycorisSet:
    """A lycoris network applied to the U-Net and text encoders, with the engine's network interface."""

    network: nn.Module  # lycoris.kohya.LycorisNetworkKohya
    names: dict[str, str]  # lycoris module name -> file (kohya) module name
    components: dict[str, str]  # lycoris module name -> component (unet, text_encoder, text_encoder_2)
    algo: str = "locon"
    kind: str = "lycoris.kohya"
    _back: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self._back = {v: k for k, v in self.names.items()}

    @property
    def models(self) -> dict[str, nn.Module]:
        """What a training state saves: the network module holds every trainable weight."""
        return {"lycoris": self.network}

    def _params(self, components: tuple[str, ...]) -> list[nn.Parameter]:
        return [p for m in self.network.loras if self.components[m.lora_name] in components
                for p in m.parameters() if p.requires_grad]

    def unet_params(self) -> list[nn.Parameter]:
        return self._params((UNET,))

    def text_encoder_params(self, component: str | None = None) -> list[nn.Parameter]:
        """Every text encoder's adapter parameters, or one encoder's ("text_encoder_2")."""
        return self._params((component,) if component else TEXT_ENCODER_NAMES)

    def parameters(self) -> list[nn.Parameter]:
        return self.unet_params() + self.text_encoder_params()

    def named_modules_by_component(self) -> dict[str, dict[str, nn.Module]]:
        """component -> file module name -> lycoris module."""
        out: dict[str, dict[str, nn.Module]] = {}
        for m in self.network.loras:
            out.setdefault(self.components[m.lora_name], {})[self.names[m.lora_name]] = m
        return out

    def unet_modules(self, family: str = "sd15") -> dict[str, list[nn.Parameter]]:
        """U-Net file module name -> its trainable parameters (block-wise learning rates group by these)."""
        return {name: [p for p in m.parameters() if p.requires_grad]
                for name, m in self.named_modules_by_component().get(UNET, {}).items()}

    def module_counts(self) -> dict[str, int]:
        return {part: len(mods) for part, mods in self.named_modules_by_component().items()}

    def set_scale(self, weight: float) -> None:
        self.network.set_multiplier(weight)

    def apply_max_norm(self, limit: float) -> tuple[int, float, float]:
        """sd-scripts' scale_weight_norms after a step, by lycoris-lora: (keys scaled, mean norm, max norm)."""
        device = next(iter(self.network.parameters())).device
        scaled, norms = 0, []
        for module in self.network.loras:  # per module, so the mean covers every key as sd-scripts' does
            was_scaled, norm = module.apply_max_norm(limit, device)
            if was_scaled is None:  # an algorithm without a norm to bound (e.g. OFT)
                continue
            scaled += int(was_scaled)
            norms.append(float(norm))
        return scaled, (sum(norms) / len(norms) if norms else 0.0), max(norms, default=0.0)

    def _scalars(self) -> dict[str, torch.Tensor]:
        """lycoris module name -> its `scalar` buffer: max-norm scales modules through it (use_scalar off), and a
        buffer is neither a trainable weight nor in lycoris' state dict, so a training state carries it here."""
        return {m.lora_name: m.scalar for m in self.network.loras
                if isinstance(getattr(m, "scalar", None), torch.Tensor) and not isinstance(m.scalar, nn.Parameter)}

    def hidden_state(self) -> dict:
        """What the network computes with besides its trainable weights (training states and early stop's best
        weights keep it)."""
        scalars = {name: s.detach().cpu().clone() for name, s in self._scalars().items()}
        return {"lycoris_scalars": scalars} if scalars else {}

    def load_hidden_state(self, state: dict) -> None:
        saved = state.get("lycoris_scalars", {})
        with torch.no_grad():
            for name, scalar in self._scalars().items():
                if name in saved:
                    scalar.copy_(saved[name])

    extra_state, load_extra_state = hidden_state, load_hidden_state  # the training state's hook (session.py)

    def _state(self) -> dict[str, torch.Tensor]:
        """lycoris' state dict with a conv layer's lora_up as 4-D, as kohya files hold it (lycoris' DyLoRA gives
        [out, r] for a 1x1 convolution)."""
        state = self.network.state_dict()
        for key, value in state.items():
            down = state.get(key.replace("lora_up.weight", "lora_down.weight"))
            if key.endswith("lora_up.weight") and down is not None and down.dim() == 4 and value.dim() == 2:
                state[key] = value[:, :, None, None]
        return state

    def kohya_state_dict(self, family: str = "sd15") -> dict[str, torch.Tensor]:
        out = {}
        for key, value in self._state().items():
            name, _, suffix = key.partition(".")
            out[f"{self.names[name]}.{suffix}"] = value.detach().to("cpu", copy=True).contiguous()
        return out

    def load_weights(self, state_dict: dict[str, torch.Tensor], family: str = "sd15") -> None:
        """Continue from a file of the same algorithm; a file of another type is named in the error."""
        from trainer.networks.file_types import check_same_type

        check_same_type(state_dict, self.kind, self.algo)
        renamed, unknown = {}, []
        for key, value in state_dict.items():
            name, _, suffix = key.partition(".")
            if name in self._back:
                renamed[f"{self._back[name]}.{suffix}"] = value
            else:
                unknown.append(name)
        own = self._state()  # the saved layout (DyLoRA writes its blocks joined)
        missing = sorted({self.names[k.partition(".")[0]] for k in set(own) - set(renamed)})
        problems = []
        if unknown:
            problems.append(f"modules this network does not have ({len(set(unknown))}): {sorted(set(unknown))[:8]}")
        if missing:
            problems.append(f"missing in the file ({len(missing)}): {missing[:8]}")
        extra = sorted({k.partition(".")[2] for k in set(renamed) - set(own) if k.partition(".")[0] in self.names})
        if extra:  # e.g. dora_scale from a DoRA file: this network would drop it
            problems.append(f"keys this network does not use: {', '.join(extra)} (a DoRA file needs dora_wd=True)"
                            if "dora_scale" in extra else f"keys this network does not use: {', '.join(extra)}")
        problems += [f"{self.names[k.partition('.')[0]]}.{k.partition('.')[2]}: file has {tuple(v.shape)}, the "
                     f"network expects {tuple(own[k].shape)} (a different network_dim/conv_dim/factor?)"
                     for k, v in renamed.items() if k in own and v.shape != own[k].shape]
        if problems:
            raise ValueError(f"LyCORIS ({self.algo}) weights do not fit this network:\n  " + "\n  ".join(problems))
        per_alpha = _scale_per_alpha(self.network.loras)
        self.network.load_state_dict(renamed, strict=False)
        for m in self.network.loras:
            if id(m) in per_alpha:  # lycoris computed scale once, from the configured alpha: the file's counts
                m.scale = per_alpha[id(m)] * float(m.alpha)
            if hasattr(m, "up_list"):  # lycoris' DyLoRA ignores load_state_dict: its rank blocks are set here
                _load_dylora_blocks(m, renamed[f"{m.lora_name}.lora_down.weight"],
                                    renamed[f"{m.lora_name}.lora_up.weight"])


def _scale_per_alpha(modules) -> dict[int, float]:
    """id(module) -> scale / stored alpha, for the modules with a scale (not OFT, whose alpha is a constraint).
    Each lycoris module's scale is proportional to the alpha it stores (alpha / rank, or / sqrt(rank) with rs_lora,
    stored as is or x rank / r_factor), so this ratio gives the scale of a loaded alpha by the module's own rule."""
    return {id(m): m.scale / float(m.alpha) for m in modules
            if isinstance(getattr(m, "scale", None), numbers.Real) and isinstance(getattr(m, "alpha", None), torch.Tensor)
            and float(m.alpha) != 0}


@torch.no_grad()
def _load_dylora_blocks(module, down: torch.Tensor, up: torch.Tensor) -> None:
    """Split a file's full-rank lora_down/lora_up into the module's blocks of `block_size` ranks."""
    size = module.block_size
    for i, (d, u) in enumerate(zip(module.down_list, module.up_list, strict=True)):
        d.copy_(down[i * size:(i + 1) * size].reshape(d.shape))
        u.copy_(up[:, i * size:(i + 1) * size].reshape(u.shape))

def _file_names(network, unet, text_encoders: dict[str, nn.Module], family: str):
    """lycoris module name -> (component, file name), found through the module each one wraps."""
    from trainer.networks.kohya_format import module_namer

    paths = {}
    for component, model in {UNET: unet, **text_encoders}.items():
        paths.update({id(m): (component, p) for p, m in model.named_modules()})
    file_name = module_namer(family, unet)
    names, components = {}, {}
    for m in network.loras:
        component, path = paths[id(m.org_module[0])]
        names[m.lora_name] = file_name(component, path)
        components[m.lora_name] = component
    return names, components


def add_lycoris(unet: nn.Module, text_encoders: list, *, family: str, dim: int, alpha: float, algo: str,
                conv_dim: int | None = None, conv_alpha: float | None = None, dropout: float = 0.0,
                network_args: list[str] = (), train_unet: bool = True, train_text_encoder: bool = True,
                exclude: tuple[str, ...] = ()) -> LycorisSet:
    """Freeze the models and apply a lycoris network of `algo` (network_args checked against it)."""
    from lycoris.kohya import create_network

    from trainer.networks.fp8_reads import read_base_in_compute_dtype

    kwargs = lycoris_kwargs(algo, network_args, conv_dim=conv_dim, conv_alpha=conv_alpha, dropout=dropout)
    kwargs["preset"] = _preset(str(kwargs.get("preset", "full")), unet, conv=bool(conv_dim), exclude=exclude)
    tes = {name: te for name, te in zip(TEXT_ENCODER_NAMES, text_encoders, strict=False) if te is not None}
    for model in [unet, *tes.values()]:
        model.requires_grad_(False)
    te_arg = list(tes.values()) if len(tes) > 1 else next(iter(tes.values()), None)
    quiet = logging.getLogger("LyCORIS")
    level, quiet.level = quiet.level, logging.ERROR  # its per-module info lines would flood the run log
    try:
        network = create_network(1.0, dim, alpha, None, te_arg, unet, warn_on_unmatched=False, **kwargs)
    finally:
        quiet.setLevel(level)
    network.apply_to(te_arg, unet, apply_text_encoder=train_text_encoder, apply_unet=train_unet)
    if not network.loras:
        raise ValueError(f"LyCORIS preset {kwargs['preset'].removeprefix(PRESET_PREFIX)} matched no layer of this "
                         f"model")
    read_base_in_compute_dtype(network)  # speed.fp8_base: weight rebuilds read the base in the compute dtype
    names, components = _file_names(network, unet, tes, family)
    return LycorisSet(network, names, components, algo=algo)
