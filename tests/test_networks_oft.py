"""networks.oft (sd-scripts' OFT) on tiny SD1.5 and SDXL: sd-scripts' key layout (`oft_unet_...` with `.oft_blocks`
[dim, out/dim, out/dim] and `.alpha`), the layers sd-scripts wraps, a file that loads back and reproduces the output,
and the file applied with sd-scripts' own formula (re-written here in plain torch) giving the trained output."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from tests.test_networks_lycoris import BUILDERS, _forward, _text_encoders, _train_a_little
from trainer.networks.factory import build_network
from trainer.networks.save import read_lora, save_lora


def _net(dim=4, alpha=1e-3, args=(), module="networks.oft"):
    return SimpleNamespace(network_module=module, network_dim=dim, network_alpha=alpha, network_args=list(args),
                           conv_dim=0, conv_alpha=1.0, network_dropout=0.0)


def _build(family, n):
    pipe = BUILDERS[family](seed=0)
    return pipe, build_network(n, family, pipe.unet, _text_encoders(pipe, family))


def _sd_scripts_merge(unet, tensors: dict[str, torch.Tensor], family: str) -> None:
    """Merge an OFT file into the U-Net as sd-scripts' OFTInfModule.merge_to computes it: Q = B - B^T held to
    norm alpha * out, R = (I + Q)(I - Q)^-1, each block of output rows W_k <- R_k^T W_k."""
    from trainer.networks.base_weights import layer_names

    layers = layer_names(unet, [], family)
    for key in [k for k in tensors if k.endswith(".oft_blocks")]:
        name = key.removesuffix(".oft_blocks")
        blocks, alpha = tensors[key].double(), float(tensors[f"{name}.alpha"])
        layer = layers["lora_unet_" + name.removeprefix("oft_unet_")]
        w = layer.weight.data.double()
        k, n, _ = blocks.shape
        q = blocks - blocks.transpose(1, 2)
        norm = q.flatten().norm()
        q = q * ((norm.clamp(max=alpha * w.shape[0]) + 1e-8) / (norm + 1e-8))
        eye = torch.eye(n, dtype=q.dtype).expand(k, n, n)
        r = (eye + q) @ torch.linalg.inv(eye - q)
        merged = torch.einsum("knm,kn...->km...", r, w.reshape(k, n, *w.shape[1:])).reshape(w.shape)
        layer.weight.data.copy_(merged.to(layer.weight.dtype))


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_oft_file_has_sd_scripts_layout_loads_back_and_matches_sd_scripts_math(family, tmp_path):
    base = _forward(BUILDERS[family](seed=0), family)
    pipe, net = _build(family, _net())
    _train_a_little(net)
    trained = _forward(pipe, family)
    assert not torch.allclose(trained, base, atol=1e-4), "the network must change the output"

    path = save_lora(tmp_path / "oft.safetensors", net.kohya_state_dict(family), {}, precision="float")
    tensors, _ = read_lora(path)
    assert tensors and all(k.startswith("oft_unet_") and k.endswith((".oft_blocks", ".alpha")) for k in tensors)
    attn = "down_blocks_0_attentions_0" if family == "sd15" else "input_blocks_4_1"
    blocks = tensors[f"oft_unet_{attn}_transformer_blocks_0_attn1_to_q.oft_blocks"]
    out = dict(pipe.unet.named_modules())[
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q" if family == "sd15"
        else "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"].out_features
    assert tuple(blocks.shape) == (4, out // 4, out // 4)  # sd-scripts: dim blocks of out/dim channels
    assert float(tensors[f"oft_unet_{attn}_transformer_blocks_0_attn1_to_q.alpha"]) == pytest.approx(1e-3)
    # sd-scripts' default (no enable_all_linear/enable_conv): attention q/k/v/out only
    assert {k.partition(".")[0].rsplit("_", 1)[-1] for k in tensors} == {"q", "k", "v", "0"}

    fresh_pipe, fresh = _build(family, _net())
    fresh.load_weights(tensors, family)
    assert torch.allclose(_forward(fresh_pipe, family), trained, atol=1e-5)

    merged = BUILDERS[family](seed=0)
    _sd_scripts_merge(merged.unet, tensors, family)
    assert torch.allclose(_forward(merged, family), trained, atol=1e-4)


def test_enable_all_linear_and_enable_conv_add_sd_scripts_layers():
    from trainer.networks.oft import oft_targets

    unet = BUILDERS["sd15"](seed=0).unet
    attn = oft_targets(unet, enable_all_linear=False, enable_conv=False)
    linear = oft_targets(unet, enable_all_linear=True, enable_conv=False)
    conv = oft_targets(unet, enable_all_linear=True, enable_conv=True)
    assert all(p.rsplit(".", 2)[-2] in ("attn1", "attn2", "to_out") for p in attn)
    assert set(attn) < set(linear) and {p for p in linear if p.endswith(("proj_in", "ff.net.2"))}
    for leaf in ("resnets.0.conv1", "resnets.0.time_emb_proj", "downsamplers.0.conv"):  # 3x3 convolutions too
        assert any(p.endswith(leaf) for p in conv), leaf
    assert not {p for p in linear if ".resnets." in p}


def test_oft_arguments_and_block_count_are_checked():
    with pytest.raises(ValueError, match="rank_dropout"):
        _build("sd15", _net(args=["rank_dropout=0.1"]))
    with pytest.raises(ValueError, match="enable_conv"):
        _build("sd15", _net(args=["enable_conv=maybe"]))
    with pytest.raises(ValueError, match=r"network_dim.*5 does not divide 32"):
        _build("sd15", _net(dim=5))


def test_oft_rules_name_the_fields_oft_does_not_use():
    from trainer.config import TrainConfig, check

    def fields(**network):
        cfg = TrainConfig.model_validate({"network": {"network_module": "networks.oft", **network}})
        return {(f.field, f.level) for f in check(cfg, for_training=False)}

    found = fields(network_alpha=16.0, conv_dim=4)
    assert {("training.network_train_unet_only", "warning"), ("network.network_alpha", "warning"),
            ("network.conv_dim", "warning")} <= found
    assert ("network.network_alpha", "error") in fields(network_alpha=0.0)
    text_only = TrainConfig.model_validate({"network": {"network_module": "networks.oft", "network_alpha": 1e-3},
                                            "training": {"network_train_text_encoder_only": True}})
    assert [f.level for f in check(text_only, for_training=False)
            if f.field == "training.network_train_text_encoder_only"] == ["error"]
    clean = TrainConfig.model_validate({"network": {"network_module": "networks.oft", "network_alpha": 1e-3},
                                        "training": {"network_train_unet_only": True}})
    assert not [f for f in check(clean, for_training=False) if f.field.startswith(("network.", "training.network"))]


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_continuing_a_file_of_another_alpha_trains_and_saves_under_the_configured_constraint(family, tmp_path):
    """sd-scripts continues an OFT file with the constraint of its own network_alpha (OFTModule computes
    constraint = alpha * out once, at creation; load_weights only overwrites the alpha buffer). Danlu does the same,
    says so in a warning, and saves the alpha it trained under (sd-scripts would write the file's back)."""
    pipe, net = _build(family, _net(alpha=1e-3))
    _train_a_little(net)
    tensors, _ = read_lora(save_lora(tmp_path / "a.safetensors", net.kohya_state_dict(family), {}, precision="float"))

    fresh_pipe, fresh = _build(family, _net(alpha=5e-4))
    notes = fresh.load_weights(tensors, family)
    assert len(notes) == 1 and "0.001" in notes[0] and "0.0005" in notes[0], notes
    assert all(m.constraint == pytest.approx(5e-4 * m.dim) for m in fresh.network.loras)
    saved = fresh.kohya_state_dict(family)
    alphas = [float(v) for k, v in saved.items() if k.endswith(".alpha")]
    assert alphas == pytest.approx([5e-4] * len(alphas))
    # the rotation is held to the configured norm limit: sd-scripts' maths with alpha 5e-4 gives the output
    at_config = BUILDERS[family](seed=0)
    _sd_scripts_merge(at_config.unet, saved, family)
    assert torch.allclose(_forward(fresh_pipe, family), _forward(at_config, family), atol=1e-4)
    at_file = BUILDERS[family](seed=0)
    _sd_scripts_merge(at_file.unet, tensors, family)
    assert not torch.allclose(_forward(at_file, family), _forward(at_config, family), atol=1e-4)

    same_pipe, same = _build(family, _net(alpha=1e-3))
    assert not same.load_weights(tensors, family)  # the same alpha: nothing to say
