"""DoRA as a networks.lora option (network_args dora_wd=True) on tiny SD1.5 and SDXL: the file is the kohya LoRA layout
plus `dora_scale` with one magnitude per input column, which ComfyUI/Forge/A1111 apply exactly. The test applies the
file with ComfyUI's formula (comfy/weight_adapter: LoRAAdapter.calculate_weight + weight_decompose), re-written here
in plain torch, and compares with the trained network's output."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from tests.test_networks_lycoris import BUILDERS, _forward, _text_encoders, _train_a_little
from trainer.networks.factory import build_network
from trainer.networks.save import read_lora, save_lora


def _net(args=("dora_wd=True",), conv_dim=0, dropout=0.0):
    return SimpleNamespace(network_module="networks.lora", network_dim=4, network_alpha=2.0, network_args=list(args),
                           conv_dim=conv_dim, conv_alpha=2.0, network_dropout=dropout)


def _build(family, n):
    pipe = BUILDERS[family](seed=0)
    return pipe, build_network(n, family, pipe.unet, _text_encoders(pipe, family))


def _comfyui_apply(pipe, tensors: dict[str, torch.Tensor], family: str) -> None:
    """Apply a kohya LoRA/DoRA file at strength 1 the way ComfyUI computes it."""
    from trainer.networks.base_weights import layer_names

    layers = layer_names(pipe.unet, _text_encoders(pipe, family), family)
    for key in [k for k in tensors if k.endswith(".lora_down.weight")]:
        name = key.removesuffix(".lora_down.weight")
        down, up = tensors[key].float(), tensors[f"{name}.lora_up.weight"].float()
        weight = layers[name].weight.data
        diff = (up.flatten(1) @ down.flatten(1)).reshape(weight.shape) * (float(tensors[f"{name}.alpha"]) / down.shape[0])
        calc = weight + diff
        scale = tensors.get(f"{name}.dora_scale")
        if scale is not None:
            if scale.shape[0] == calc.shape[0]:  # ComfyUI's output-axis branch divides by the BASE weight's norm
                norm = weight.reshape(weight.shape[0], -1).norm(dim=1).reshape(weight.shape[0], *[1] * (weight.dim() - 1))
            else:
                norm = (calc.transpose(0, 1).reshape(calc.shape[1], -1).norm(dim=1, keepdim=True)
                        .reshape(calc.shape[1], *[1] * (calc.dim() - 1)).transpose(0, 1))
            calc = calc * (scale.float() / (norm + torch.finfo(weight.dtype).eps))
        weight.copy_(calc)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_dora_file_is_applied_by_comfyui_formula_as_trained_and_loads_back(family, tmp_path):
    base = _forward(BUILDERS[family](seed=0), family)
    pipe, net = _build(family, _net(conv_dim=4))
    _train_a_little(net)
    trained = _forward(pipe, family)
    assert not torch.allclose(trained, base, atol=1e-4)

    tensors, _ = read_lora(save_lora(tmp_path / "dora.safetensors", net.kohya_state_dict(family), {}, "float"))
    names = {k.partition(".")[0] for k in tensors}
    assert {k.partition(".")[2] for k in tensors} == {"lora_down.weight", "lora_up.weight", "alpha", "dora_scale"}
    assert all(f"{n}.dora_scale" in tensors for n in names)
    te = "lora_te_" if family == "sd15" else "lora_te1_"
    assert any(n.startswith(te) for n in names) and any("_ff_net_2" in n for n in names)
    for n in names:  # one magnitude per input column: [1, in] (conv: [1, in, 1, 1])
        down, scale = tensors[f"{n}.lora_down.weight"], tensors[f"{n}.dora_scale"]
        assert scale.shape == (1, down.shape[1], *[1] * (down.dim() - 2)), (n, scale.shape)

    comfy = BUILDERS[family](seed=0)
    with torch.no_grad():
        _comfyui_apply(comfy, tensors, family)
    assert torch.allclose(_forward(comfy, family), trained, atol=1e-4)

    fresh_pipe, fresh = _build(family, _net(conv_dim=4))
    fresh.load_weights(tensors, family)
    assert torch.allclose(_forward(fresh_pipe, family), trained, atol=1e-5)


def test_dora_files_and_plain_runs_do_not_mix_silently():
    pipe, net = _build("sd15", _net())
    dora_file = net.kohya_state_dict("sd15")
    _, plain = _build("sd15", _net(args=()))
    with pytest.raises(ValueError, match="dora_wd=True"):
        plain.load_weights(dora_file, "sd15")
    with pytest.raises(ValueError, match="dora_wd"):
        _build("sd15", _net(args=("dora_wd=perhaps",)))
    with pytest.raises(ValueError, match="network_dropout"):
        _build("sd15", _net(dropout=0.1))


def test_lycoris_dora_defaults_to_the_axis_the_webuis_apply():
    from trainer.networks.lycoris_net import add_lycoris

    for extra, shape in (([], (1, 32)), (["wd_on_output=True"], (32, 1))):  # an explicit choice is kept
        pipe = BUILDERS["sd15"](seed=0)
        net = add_lycoris(pipe.unet, [], family="sd15", dim=4, alpha=2.0, algo="locon", train_text_encoder=False,
                          network_args=["dora_wd=True", "preset=attn-mlp", *extra])
        tensors = net.kohya_state_dict("sd15")
        key = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.dora_scale"
        assert tuple(tensors[key].shape) == shape
