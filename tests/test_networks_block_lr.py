"""Block-wise learning rates: which block each U-Net module belongs to (SD1.5 and SDXL), the named curves, and
the optimizer groups: a zero block is not trained, a 0.5 block learns at half the rate."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from trainer.models.tiny import build_tiny_sd15, build_tiny_sdxl
from trainer.networks.block_lr import block_of, parse_weights, unet_groups
from trainer.networks.inject import add_lora


def _weights(down="", mid="", up="", threshold=0.0):
    return SimpleNamespace(down_lr_weight=down, mid_lr_weight=mid, up_lr_weight=up, block_lr_zero_threshold=threshold)


def test_sd15_blocks_follow_sd_scripts_numbering():
    assert block_of("lora_unet_conv_in", "sd15") == ("down", 0)
    assert block_of("lora_unet_down_blocks_0_attentions_0_proj_in", "sd15") == ("down", 1)
    assert block_of("lora_unet_down_blocks_0_resnets_1_conv1", "sd15") == ("down", 2)
    assert block_of("lora_unet_down_blocks_0_downsamplers_0_conv", "sd15") == ("down", 3)
    assert block_of("lora_unet_down_blocks_3_resnets_1_conv2", "sd15") == ("down", 11)
    assert block_of("lora_unet_mid_block_attentions_0_proj_out", "sd15") == ("mid", 0)
    assert block_of("lora_unet_up_blocks_0_resnets_0_conv1", "sd15") == ("up", 0)
    assert block_of("lora_unet_up_blocks_3_attentions_2_proj_out", "sd15") == ("up", 11)
    assert block_of("lora_unet_time_embedding_linear_1", "sd15") is None


def test_sdxl_blocks_are_the_original_layout_blocks():
    assert block_of("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", "sdxl") == ("down", 4)
    assert block_of("lora_unet_output_blocks_8_0_in_layers_2", "sdxl") == ("up", 8)


def test_sdxl_middle_block_has_three_weights_as_in_sd_scripts():
    """sd-scripts' lora.py (get_block_index, SDXL_NUM_OF_MID_BLOCKS = 3): middle_block.0/.1/.2 are three blocks,
    each with its own mid_lr_weight entry; SD1.x has one."""
    from trainer.networks.block_lr import block_weights

    assert block_of("lora_unet_middle_block_0_in_layers_2", "sdxl") == ("mid", 0)
    assert block_of("lora_unet_middle_block_1_proj_in", "sdxl") == ("mid", 1)
    assert block_of("lora_unet_middle_block_2_out_layers_3", "sdxl") == ("mid", 2)
    assert block_weights(_weights(mid="0.5,0"), "sdxl")["mid"] == [0.5, 0.0, 1.0]
    assert block_weights(_weights(mid="0.5"), "sd15")["mid"] == [0.5]
    with pytest.raises(ValueError, match="mid_lr_weight"):
        block_weights(_weights(mid="1,1"), "sd15")
    with pytest.raises(ValueError, match="mid_lr_weight"):
        block_weights(_weights(mid="1,1,1,1"), "sdxl")


def test_named_curves_and_lists():
    assert parse_weights("linear", 12, "down_lr_weight") == pytest.approx([i / 11 for i in range(12)])
    assert parse_weights("reverse_linear", 12, "x")[0] == 1.0
    assert parse_weights("sine", 12, "x")[-1] == pytest.approx(1.0)
    assert parse_weights("cosine", 12, "x")[0] == pytest.approx(1.0)
    assert parse_weights("cosine", 12, "x")[-1] == pytest.approx(0.0, abs=1e-12)
    assert parse_weights("zeros+0.25", 12, "x") == [0.25] * 12
    assert parse_weights("0,0.5", 12, "x") == [0.0, 0.5] + [1.0] * 10
    assert parse_weights("", 12, "x") is None
    with pytest.raises(ValueError, match="down_lr_weight"):
        parse_weights("wobbly", 12, "down_lr_weight")
    with pytest.raises(ValueError, match="at most 9"):
        parse_weights(",".join(["1"] * 10), 9, "up_lr_weight")
    assert math.isclose(parse_weights("sine", 9, "x")[4], math.sin(math.pi * 0.5 / 2))


@pytest.mark.parametrize(("family", "build"), [("sd15", build_tiny_sd15), ("sdxl", build_tiny_sdxl)])
def test_zero_block_gets_no_update_and_half_block_half_the_rate(family, build):
    pipe = build(seed=0)
    tes = [pipe.text_encoder] if family == "sd15" else [pipe.text_encoder, pipe.text_encoder_2]
    lora = add_lora(pipe.unet, tes, dim=2, alpha=2.0, train_text_encoder=False)
    modules = lora.unet_modules(family)
    # SDXL: three middle blocks, and the tiny one's adapters are all in the second (attention) one
    mid_weights = "0.5" if family == "sd15" else "1,0.5,1"
    groups, names = unet_groups(modules, family, _weights(down="zeros", mid=mid_weights), lr=1e-2)
    optimizer = torch.optim.SGD(groups, lr=1e-2)
    lrs = dict(zip(names, (g["lr"] for g in optimizer.param_groups), strict=True))
    assert lrs == {"unet": 1e-2, "unet x0.5": 5e-3}
    mid = [n for n in modules if (block_of(n, family) or ("",))[0] == "mid"]
    down = [n for n in modules if (block_of(n, family) or ("",))[0] == "down"]
    assert mid and down
    in_half = {id(p) for p in optimizer.param_groups[names.index("unet x0.5")]["params"]}
    assert all(id(p) in in_half for n in mid for p in modules[n])
    before = {n: [p.detach().clone() for p in modules[n]] for n in down}
    for p in lora.parameters():
        p.grad = torch.ones_like(p) if p.requires_grad else None
    optimizer.step()
    assert all(torch.equal(p, b) for n in down for p, b in zip(modules[n], before[n], strict=True))
    assert all(not p.requires_grad for n in down for p in modules[n])


def test_threshold_freezes_low_blocks():
    pipe = build_tiny_sd15(seed=0)
    lora = add_lora(pipe.unet, [pipe.text_encoder], dim=2, alpha=2.0, train_text_encoder=False)
    modules = lora.unet_modules("sd15")
    groups, names = unet_groups(modules, "sd15", _weights(up="1,1,1,0.1,0.1,0.1", threshold=0.2), lr=1.0)
    assert "unet x0.1" not in names
    low = [n for n in modules if block_of(n, "sd15") in {("up", 3), ("up", 4), ("up", 5)}]
    assert low and all(not p.requires_grad for n in low for p in modules[n])


def test_sd_scripts_block_weights_turn_the_switch_on_when_imported():
    from trainer.config.kohya import import_kohya

    cfg = import_kohya({"pretrained_model_name_or_path": "/m/base.safetensors",
                        "network_args": ["down_lr_weight=sine", "mid_lr_weight=0.5", "up_lr_weight=1,0.5"]})
    n = cfg.network
    assert n.enable_block_weights and (n.down_lr_weight, n.mid_lr_weight, n.up_lr_weight) == ("sine", "0.5", "1,0.5")


def test_lycoris_modules_group_by_block_too():
    from trainer.networks.lycoris_net import add_lycoris

    pipe = build_tiny_sd15(seed=0)
    net = add_lycoris(pipe.unet, [pipe.text_encoder], family="sd15", dim=2, alpha=1.0, algo="loha",
                      train_text_encoder=False, network_args=["preset=attn-mlp"])
    modules = net.unet_modules("sd15")
    groups, names = unet_groups(modules, "sd15", _weights(down="zeros", mid="0.5"), lr=1.0)
    assert dict(zip(names, (g["lr"] for g in groups), strict=True)) == {"unet": 1.0, "unet x0.5": 0.5}
    down = [n for n in modules if (block_of(n, "sd15") or ("",))[0] == "down"]
    assert down and all(not p.requires_grad for n in down for p in modules[n])


def test_oft_modules_group_by_block_under_their_own_prefix():
    """networks.oft names its modules oft_unet_<module>; block weights apply to them as to lora_unet_ ones."""
    from trainer.networks.oft import add_oft

    assert block_of("oft_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", "sd15") == ("down", 1)
    pipe = build_tiny_sd15(seed=0)
    modules = add_oft(pipe.unet, family="sd15", dim=4, alpha=1e-3).unet_modules("sd15")
    assert all(n.startswith("oft_unet_") for n in modules)
    groups, names = unet_groups(modules, "sd15", _weights(down="zeros", mid="0.5"), lr=1.0)
    assert dict(zip(names, (g["lr"] for g in groups), strict=True)) == {"unet": 1.0, "unet x0.5": 0.5}


def test_values_a_switch_keeps_off_are_reported_by_check():
    from trainer.config import TrainConfig, check

    cfg = TrainConfig.model_validate({"network": {"down_lr_weight": "zeros", "base_weights": ["/x.safetensors"]}})
    fields = {f.field for f in check(cfg, for_training=False)}
    assert {"network.enable_block_weights", "network.base_weights"} <= fields
    on = TrainConfig.model_validate({"network": {"down_lr_weight": "zeros", "enable_block_weights": True}})
    assert "network.enable_block_weights" not in {f.field for f in check(on, for_training=False)}
