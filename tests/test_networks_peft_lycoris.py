"""LoHa and LoKr files through peft's LyCORIS loaders (and diffusers' own LoKr loader for the U-Net).

diffusers 0.42's `load_lora_weights` for SD1.5/SDXL converts only lora_down/lora_up/dora_scale from kohya files and
refuses hada_*/lokr_* keys ("The following keys have not been correctly renamed"); its LoKr support covers peft-format
keys named by diffusers module paths (`UNet2DConditionModel.load_lora_adapter`, whose config inference reads 2-D
factors only, so not SD1.5's 1x1-conv proj_in/proj_out), and LoHa exists only in peft. So the
check here translates the file's module names to the models' own paths (names only; LoKr's alpha is baked by
diffusers' own helper, as its loaders do) and asserts that every tensor of the file lands in an adapter weight and the
output equals the trained network's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.test_networks_lycoris import BUILDERS, _forward, _text_encoders, _train_a_little
from trainer.networks.inject import TEXT_ENCODER_NAMES
from trainer.networks.lycoris_net import add_lycoris
from trainer.networks.save import read_lora, save_lora

ADAPTER = "file"


def _paths(pipe, family) -> dict[str, tuple[str, str]]:
    """file module name -> (component, module path), by the kohya names base_weights matches files with."""
    from trainer.networks.base_weights import layer_names

    tes = _text_encoders(pipe, family)
    models = {"unet": pipe.unet, **dict(zip(TEXT_ENCODER_NAMES, tes, strict=False))}
    where = {id(m): (component, path) for component, model in models.items() for path, m in model.named_modules()}
    return {name: where[id(layer)] for name, layer in layer_names(pipe.unet, tes, family).items()}


def _by_component(tensors, pipe, family) -> dict[str, dict[str, torch.Tensor]]:
    """component -> {"<module path>.<suffix>": tensor}: the file's keys under the models' own names."""
    paths, out = _paths(pipe, family), {}
    for key, value in tensors.items():
        name, _, suffix = key.partition(".")
        component, path = paths[name]
        out.setdefault(component, {})[f"{path}.{suffix}"] = value
    return out


def _load_loha(model: nn.Module, sd: dict[str, torch.Tensor]) -> None:
    from peft import LoHaConfig, inject_adapter_in_model, set_peft_model_state_dict

    alphas = {k.removesuffix(".alpha"): float(v) for k, v in sd.items() if k.endswith(".alpha")}
    ranks = {k.removesuffix(".hada_w1_b"): v.shape[0] for k, v in sd.items() if k.endswith(".hada_w1_b")}
    config = LoHaConfig(r=4, alpha=4, target_modules=sorted(ranks),
                        rank_pattern={f"^{p}$": r for p, r in ranks.items()},
                        alpha_pattern={f"^{p}$": a for p, a in alphas.items()})
    inject_adapter_in_model(config, model, adapter_name=ADAPTER)
    weights = {k: v for k, v in sd.items() if not k.endswith(".alpha")}
    _set_all(model, weights, set_peft_model_state_dict)


def _load_lokr(model: nn.Module, sd: dict[str, torch.Tensor], by_diffusers: bool) -> None:
    from diffusers.loaders.lora_conversion_utils import _bake_lokr_alpha_
    from diffusers.loaders.peft import _create_lokr_config
    from peft import inject_adapter_in_model, set_peft_model_state_dict

    sd = dict(sd)
    _bake_lokr_alpha_(sd)  # diffusers' own step: alpha/rank into the left factor, alpha keys consumed
    if by_diffusers:  # diffusers' model-level loader (infers the LoKrConfig from the shapes)
        model.load_lora_adapter(sd, adapter_name=ADAPTER, prefix=None)
        _assert_all_placed(model, sd)
        return
    # diffusers' config inference reads 2-D factors only; a 1x1 convolution's factor is [a, b, 1, 1] (peft's own
    # layout for Conv2d too), so the config is inferred from 2-D views and peft loads the tensors as they are.
    config = _create_lokr_config({k: v.flatten(1) if v.dim() > 2 else v for k, v in sd.items()}, None)
    inject_adapter_in_model(config, model, adapter_name=ADAPTER)
    _set_all(model, sd, set_peft_model_state_dict)


def _set_all(model, weights, setter) -> None:
    result = setter(model, weights, adapter_name=ADAPTER)
    assert not result.unexpected_keys, result.unexpected_keys[:5]
    _assert_all_placed(model, weights)


def _assert_all_placed(model, weights) -> None:
    """Every file tensor equals an adapter weight of the model, and the model has no adapter weight besides them."""
    live = {k.replace(f".{ADAPTER}", ""): v for k, v in model.state_dict().items() if f".{ADAPTER}" in k}
    assert set(live) == set(weights), sorted(set(live) ^ set(weights))[:5]
    assert all(torch.equal(live[k].float(), weights[k].float()) for k in weights)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
@pytest.mark.parametrize("algo", ["loha", "lokr"])
def test_peft_lycoris_loaders_take_every_key_and_agree(family, algo, tmp_path):
    ours = BUILDERS[family](seed=0)
    net = add_lycoris(ours.unet, _text_encoders(ours, family), family=family, dim=4, alpha=2.0, algo=algo,
                      network_args=["preset=attn-mlp"])
    _train_a_little(net)
    trained = _forward(ours, family)
    tensors, _ = read_lora(save_lora(tmp_path / "f.safetensors", net.kohya_state_dict(family), {}, "float"))

    theirs = BUILDERS[family](seed=0)
    base = _forward(theirs, family)
    models = {"unet": theirs.unet, **dict(zip(TEXT_ENCODER_NAMES, _text_encoders(theirs, family), strict=False))}
    parts = _by_component(tensors, theirs, family)
    assert set(parts) == set(models)  # U-Net and every text encoder are in the file
    for component, sd in parts.items():
        if algo == "loha":
            _load_loha(models[component], sd)
        else:
            # SD1.5's U-Net has 1x1-conv proj_in/proj_out, which diffusers' LoKr config inference cannot read
            _load_lokr(models[component], sd, by_diffusers=component == "unet" and family == "sdxl")
    loaded = _forward(theirs, family)
    assert not torch.allclose(loaded, base, atol=1e-4)
    assert torch.allclose(loaded, trained, atol=1e-4), float((loaded - trained).abs().max())


def test_diffusers_load_lora_weights_refuses_kohya_loha_lokr_for_sd(tmp_path):
    """The reason for the translation above: the kohya path of load_lora_weights names the hada_/lokr_ keys it cannot
    rename (diffusers 0.42). When this starts to pass through, the test above can load the file directly."""
    pipe = BUILDERS["sd15"](seed=0)
    net = add_lycoris(pipe.unet, [pipe.text_encoder], family="sd15", dim=4, alpha=2.0, algo="loha",
                      network_args=["preset=attn-mlp"])
    path = save_lora(tmp_path / "loha.safetensors", net.kohya_state_dict("sd15"), {}, "float")
    with pytest.raises(ValueError, match="not been correctly renamed"):
        BUILDERS["sd15"](seed=0).load_lora_weights(str(path))
