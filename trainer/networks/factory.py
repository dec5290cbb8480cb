"""One entry point from `network.network_module` to the adapters a run trains.

Every builder returns an object with the same interface, which is all the engine uses:
`models` (what a training state saves), `unet_params()` / `text_encoder_params(component=None)` (all
encoders, or one: "text_encoder_2") / `parameters()`,
`module_counts()`, `set_scale(weight)`, `kohya_state_dict(family)` (the file's keys) and
`load_weights(state_dict, family)` (continue from a file; a file of another kind is refused by name; it may return
warnings for the run, e.g. networks.oft's file alpha that differs from network_alpha).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from torch import nn

from trainer.families import get_spec


def _lora(n, family: str, unet: nn.Module, text_encoders: list, **parts):
    from trainer.networks.inject import add_lora

    if n.network_args:
        return _lora_by_lycoris(n, family, unet, text_encoders, **parts)
    return add_lora(unet, text_encoders, dim=n.network_dim, alpha=n.network_alpha, dropout=n.network_dropout,
                    conv_dim=n.conv_dim or None, conv_alpha=n.conv_alpha if n.conv_dim else None, **parts)


# Layers LyCORIS presets add that sd-scripts' networks.lora / networks.dylora never train.
NOT_IN_LORA = ("time_embedding", "add_embedding", "conv_in", "conv_out")
LORA_ARGS = ("rank_dropout", "module_dropout", "dora_wd")


def _lora_by_lycoris(n, family: str, unet: nn.Module, text_encoders: list, **parts):
    """networks.lora with sd-scripts' rank_dropout / module_dropout, or DoRA (dora_wd=True): peft has no rank or
    module dropout, and its DoRA keeps one magnitude per output row, which ComfyUI and Forge apply with the base
    weight's norm instead of the adapted one (A1111 reads only the other axis). So these layers are trained by
    lycoris-lora's LoCon, DoRA with one magnitude per input column (`dora_scale` [1, in]), the axis A1111, Forge and
    ComfyUI all apply exactly (lycoris_args sets that axis); the file is the plain LoRA layout (plus `dora_scale`)."""
    from trainer.networks.lycoris_args import refuse_others, split_args
    from trainer.networks.lycoris_net import add_lycoris

    refuse_others(split_args(n.network_args), LORA_ARGS, "networks.lora",
                  "conv_dim/conv_alpha and block weights are fields")
    if n.network_dropout:
        raise ValueError("network.network_dropout: with network_args (rank_dropout, module_dropout, dora_wd) "
                         "networks.lora is trained by lycoris-lora, which cannot drop lora_down's outputs as "
                         "sd-scripts' network_dropout does; set it to 0 (rank_dropout is the closest) or clear "
                         "network_args")
    net = add_lycoris(unet, text_encoders, family=family, dim=n.network_dim, alpha=n.network_alpha, algo="locon",
                      conv_dim=n.conv_dim or None, conv_alpha=n.conv_alpha,
                      network_args=[*n.network_args, "preset=full" if n.conv_dim else "preset=attn-mlp"],
                      exclude=NOT_IN_LORA, **parts)
    net.kind = "networks.lora"
    return net


def _lycoris(n, family: str, unet: nn.Module, text_encoders: list, **parts):
    from trainer.networks.lycoris_net import add_lycoris

    return add_lycoris(unet, text_encoders, family=family, dim=n.network_dim, alpha=n.network_alpha,
                       algo=n.lycoris_algo, conv_dim=n.conv_dim or None, conv_alpha=n.conv_alpha,
                       dropout=n.network_dropout, network_args=n.network_args, **parts)


def _dylora(n, family: str, unet: nn.Module, text_encoders: list, **parts):
    """sd-scripts' networks.dylora: networks.lora's layers (attention, feed-forward, proj_in/out; with conv_dim also
    the ResNet blocks and samplers) trained by lycoris-lora's DyLoRA in rank blocks of dylora_unit, saved as plain
    lora_down/lora_up (the time embedding and conv_in/conv_out, which LyCORIS presets add, stay out)."""
    from trainer.networks.lycoris_net import add_lycoris

    if n.network_args:
        raise ValueError(f"network.network_args: networks.dylora takes none of {list(n.network_args)}; use "
                         "dylora_unit, conv_dim and conv_alpha")
    if n.network_dim % n.dylora_unit or (n.conv_dim and n.conv_dim % n.dylora_unit):
        raise ValueError(f"network.dylora_unit: {n.dylora_unit} must divide network_dim ({n.network_dim})"
                         + (f" and conv_dim ({n.conv_dim})" if n.conv_dim else ""))
    net = add_lycoris(unet, text_encoders, family=family, dim=n.network_dim, alpha=n.network_alpha, algo="dylora",
                      conv_dim=n.conv_dim or None, conv_alpha=n.conv_alpha, dropout=n.network_dropout,
                      network_args=["preset=attn-mlp" if not n.conv_dim else "preset=full",
                                    f"block_size={n.dylora_unit}"],
                      exclude=NOT_IN_LORA, **parts)
    net.kind = "networks.dylora"
    return net


def _oft(n, family: str, unet: nn.Module, text_encoders: list, **_parts):
    """sd-scripts' networks.oft: U-Net only, network_dim blocks per layer, network_alpha the norm constraint (the
    rules refuse network_train_text_encoder_only and warn about conv_dim, network_dropout and a trained text
    encoder, which OFT has not)."""
    from trainer.networks.oft import add_oft

    return add_oft(unet, family=family, dim=n.network_dim, alpha=n.network_alpha, network_args=n.network_args)


BUILDERS: dict[str, Callable] = {
    "networks.lora": _lora,
    "lycoris.kohya": _lycoris,
    "networks.dylora": _dylora,
    "networks.oft": _oft,
}


def _lora_from_file(n, family: str, unet: nn.Module, text_encoders: list, dims, **parts):
    """networks.lora with a file's ranks (dim_from_weights): every module of the file at its own rank and alpha, as
    sd-scripts' create_network_from_weights builds it; with network_args (lycoris-lora) one rank per kind."""
    from trainer.networks.file_dims import layers_by_part
    from trainer.networks.inject import add_lora

    if n.network_args:
        return _lora_by_lycoris(dims.uniform(n, "networks.lora with network_args"), family, unet, text_encoders,
                                **parts)
    layers = layers_by_part(dims, family, unet, text_encoders, **parts)
    return add_lora(unet, text_encoders, dim=n.network_dim, alpha=n.network_alpha, dropout=n.network_dropout,
                    layers=layers, **parts)


def _uniform(builder: Callable, network: str) -> Callable:
    """A builder given the file's one linear rank and one conv rank in place of network_dim/conv_dim."""
    def build(n, family: str, unet: nn.Module, text_encoders: list, dims, **parts):
        if n.network_module == "lycoris.kohya" and n.lycoris_algo not in ("locon", "dylora"):
            raise ValueError(f"network.dim_from_weights: reads lora_down ranks, which a LyCORIS {n.lycoris_algo} file "
                             "has not; turn it off and set network_dim/conv_dim to the file's")
        return builder(dims.uniform(n, network), family, unet, text_encoders, **parts)

    return build


# The builders that take a file's ranks (network.dim_from_weights), by network_module.
FROM_WEIGHTS: dict[str, Callable] = {
    "networks.lora": _lora_from_file,
    "networks.dylora": _uniform(_dylora, "networks.dylora"),
    "lycoris.kohya": _uniform(_lycoris, "lycoris.kohya"),
}


def build_network(n, family: str, unet: nn.Module, text_encoders: list, *, train_unet: bool = True,
                  train_text_encoder: bool = True, dims=None):
    """The adapters `n` (the config's network group) asks for, applied to the family's U-Net and text encoders, by
    the builders its spec names (FamilySpec.network_builders: these BUILDERS for the SD families). `dims`
    (trainer.networks.file_dims.FileDims, dim_from_weights): the ranks of the file the run continues, which replace
    network_dim/network_alpha/conv_dim/conv_alpha, by the module's FROM_WEIGHTS builders."""
    spec = get_spec(family)
    module = import_module(spec.network_builders)
    builders = module.BUILDERS
    builder = builders.get(n.network_module)
    if builder is None:
        raise ValueError(f"network.network_module: {n.network_module} is not supported for {spec.label} yet; use "
                         f"{', '.join(builders)}")
    parts = {"train_unet": train_unet, "train_text_encoder": train_text_encoder}
    if dims is None:
        return builder(n, family, unet, text_encoders, **parts)
    from_file = getattr(module, "FROM_WEIGHTS", {}).get(n.network_module)
    if from_file is None:
        raise ValueError(f"network.dim_from_weights: {n.network_module} on {spec.label} cannot take its ranks from the "
                         "file; turn it off and set network_dim/conv_dim to the file's")
    return from_file(n, family, unet, text_encoders, dims, **parts)
