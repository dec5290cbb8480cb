"""The network builders of Flux (FamilySpec.network_builders): network.network_module -> the adapters on the
transformer's block Linears and the text encoders, saved under sd-scripts' Flux names (or, for LoKr/DoRA and other
per-slice LyCORIS types, the slice names of flux_sliced). Same signature as trainer.networks.factory's (family is always flux here)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


def _lora(n, family: str, unet: nn.Module, text_encoders: list, **parts):
    """networks.lora on the Flux transformer's block Linears (not an SD U-Net's), with sd-scripts' lora_flux
    network_args that apply (flux_args); DoRA (dora_wd=True) is lycoris-lora's LoCon on each split Linear, saved for
    the fused weight's slices (flux_sliced)."""
    from trainer.networks.flux_args import add_dropout_hooks, parse_flux_args, select_targets
    from trainer.networks.flux_names import transformer_targets
    from trainer.networks.inject import add_lora
    from trainer.networks.lycoris_args import flag, split_args

    if flag(split_args(n.network_args), "dora_wd"):
        from trainer.networks.flux_lycoris import add_flux_lycoris

        return add_flux_lycoris(unet, text_encoders, algo="locon", dim=n.network_dim, alpha=n.network_alpha,
                                dropout=n.network_dropout, network_args=n.network_args, kind="networks.lora", **parts)
    opts = parse_flux_args(n.network_args)
    lora_set = add_lora(unet, text_encoders, dim=n.network_dim, alpha=n.network_alpha, dropout=n.network_dropout,
                        unet_targets=select_targets(transformer_targets(unet), unet, opts), **parts)
    add_dropout_hooks(lora_set, opts)
    return lora_set


def _lycoris(n, family: str, unet: nn.Module, text_encoders: list, **parts):
    """lycoris.kohya, saved under sd-scripts' fused Flux names (LoCon/LoHa) or per slice (flux_lycoris says which)."""
    from trainer.networks.flux_lycoris import add_flux_lycoris

    return add_flux_lycoris(unet, text_encoders, algo=n.lycoris_algo, dim=n.network_dim, alpha=n.network_alpha,
                            dropout=n.network_dropout, network_args=n.network_args, **parts)


def _oft(n, family: str, unet: nn.Module, text_encoders: list, **_parts):
    """sd-scripts' oft_flux on the transformer's split Linears (oft_flux.py)."""
    from trainer.networks.oft_flux import add_flux_oft

    if len([te for te in text_encoders if te is not None]) > 1:  # T5 is given only to be trained
        raise ValueError("flux.train_t5xxl: networks.oft trains only the transformer (as sd-scripts' oft_flux); "
                         "turn train_t5xxl off")
    return add_flux_oft(unet, dim=n.network_dim, alpha=n.network_alpha, network_args=n.network_args)


BUILDERS: dict[str, Callable] = {
    "networks.lora": _lora,
    "lycoris.kohya": _lycoris,
    "networks.oft": _oft,
}
