"""kohya key names, shapes and alphas; SDXL original-layout names; the round trip back to modules."""

from __future__ import annotations

import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from transformers import CLIPTextConfig, CLIPTextModel

from trainer.models.tiny import build_tiny_sd15, build_tiny_sdxl
from trainer.networks import targets
from trainer.networks.inject import add_lora
from trainer.networks.kohya_format import from_kohya_state_dict, module_namer, to_kohya_state_dict

BLOCK_LEAVES = ["attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0",
                "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0", "ff.net.0.proj", "ff.net.2"]
TEXT_LEAVES = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2"]


def expected_unet_paths(unet) -> set[str]:
    """Written out from the model's attention blocks, independently of trainer.networks.targets."""
    paths = set()
    for name, module in unet.named_modules():
        if isinstance(module, Transformer2DModel):
            paths |= {f"{name}.proj_in", f"{name}.proj_out"}
            for b in range(len(module.transformer_blocks)):
                paths |= {f"{name}.transformer_blocks.{b}.{leaf}" for leaf in BLOCK_LEAVES}
    return paths


def expected_text_paths(text_encoder) -> set[str]:
    layers = text_encoder.config.num_hidden_layers
    return {f"text_model.encoder.layers.{i}.{leaf}" for i in range(layers) for leaf in TEXT_LEAVES}


def kohya_keys(prefix: str, paths: set[str]) -> set[str]:
    names = {prefix + p.replace(".", "_") for p in paths}
    return {f"{n}.{s}" for n in names for s in ("lora_down.weight", "lora_up.weight", "alpha")}


@pytest.fixture(scope="module")
def sd15():
    pipe = build_tiny_sd15(seed=0)
    lora = add_lora(pipe.unet, [pipe.text_encoder], dim=4, alpha=1.5, dropout=0.0,
                    train_unet=True, train_text_encoder=True)
    return pipe, lora


def test_sd15_key_set_is_exactly_the_default_set(sd15):
    pipe, lora = sd15
    sd = to_kohya_state_dict(lora, "sd15")
    unet_paths, text_paths = expected_unet_paths(pipe.unet), expected_text_paths(pipe.text_encoder)
    attention_blocks = sum(isinstance(m, Transformer2DModel) for m in pipe.unet.modules())
    # One transformer block per attention block in SD1.5: 12 modules each; 6 per text-encoder layer.
    assert len(unet_paths) == 12 * attention_blocks
    assert len(text_paths) == 6 * pipe.text_encoder.config.num_hidden_layers
    assert set(sd) == kohya_keys("lora_unet_", unet_paths) | kohya_keys("lora_te_", text_paths)


def test_sd15_shapes_and_true_alpha(sd15):
    pipe, lora = sd15
    sd = to_kohya_state_dict(lora, "sd15")
    proj_in = "lora_unet_down_blocks_0_attentions_0_proj_in"
    conv = pipe.unet.down_blocks[0].attentions[0].proj_in.base_layer  # the 1x1 Conv2d peft wraps
    assert sd[f"{proj_in}.lora_down.weight"].shape == (4, conv.in_channels, 1, 1)
    assert sd[f"{proj_in}.lora_up.weight"].shape == (conv.out_channels, 4, 1, 1)
    q = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
    hidden = pipe.text_encoder.config.hidden_size
    assert sd[f"{q}.lora_down.weight"].shape == (4, hidden)
    alphas = [v for k, v in sd.items() if k.endswith(".alpha")]
    assert all(a.dim() == 0 and a.dtype == torch.float32 and a.item() == 1.5 for a in alphas)


def test_round_trip_gives_identical_tensors(sd15):
    _, lora = sd15
    with torch.no_grad():
        for layer in lora.layers("unet").values():
            layer.lora_B[lora.adapter_name].weight.normal_()
    back = from_kohya_state_dict(to_kohya_state_dict(lora, "sd15"), lora, "sd15")
    live = lora.module_tensors()
    assert back.keys() == live.keys()
    for component, modules in live.items():
        assert back[component].keys() == modules.keys()
        for path, t in modules.items():
            assert torch.equal(back[component][path].down, t.down)
            assert torch.equal(back[component][path].up, t.up)
            assert back[component][path].alpha == t.alpha


def test_unknown_and_lycoris_keys_are_named(sd15):
    _, lora = sd15
    sd = to_kohya_state_dict(lora, "sd15")
    sd["lora_unet_nowhere_attn1_to_q.lora_down.weight"] = torch.zeros(4, 4)
    sd["lora_unet_mid_block_attentions_0_proj_in.hada_w1_a"] = torch.zeros(4, 4)
    with pytest.raises(ValueError, match="lora_unet_nowhere_attn1_to_q") as err:
        from_kohya_state_dict(sd, lora, "sd15")
    assert "hada_w1_a" in str(err.value)


def test_sdxl_names_follow_the_original_layout():
    pipe = build_tiny_sdxl(seed=0)
    lora = add_lora(pipe.unet, [pipe.text_encoder, pipe.text_encoder_2], dim=2, alpha=1.0, dropout=0.0,
                    train_unet=True, train_text_encoder=True)
    sd = to_kohya_state_dict(lora, "sdxl")
    names = {k.split(".")[0] for k in sd}
    unet_paths = expected_unet_paths(pipe.unet)
    blocks = sum(len(m.transformer_blocks) for m in pipe.unet.modules() if isinstance(m, Transformer2DModel))
    attention_blocks = sum(isinstance(m, Transformer2DModel) for m in pipe.unet.modules())
    te_layers = pipe.text_encoder.config.num_hidden_layers + pipe.text_encoder_2.config.num_hidden_layers
    assert len(names) == 10 * blocks + 2 * attention_blocks + 6 * te_layers
    unet_names = {n for n in names if n.startswith("lora_unet_")}
    assert len(unet_names) == len(unet_paths)
    assert all(n.split("_")[2] in ("input", "middle", "output") for n in unet_names)
    # Tiny SDXL: down = [plain (+downsampler), cross-attn]; its first attention sits at input_blocks.4.1.
    assert "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q" in names
    assert "lora_unet_input_blocks_5_1_transformer_blocks_1_ff_net_2" in names
    assert "lora_unet_middle_block_1_proj_in" in names
    assert "lora_unet_output_blocks_0_1_transformer_blocks_0_attn2_to_out_0" in names
    assert {n[:9] for n in names - unet_names} == {"lora_te1_", "lora_te2_"}
    assert "lora_te2_text_model_encoder_layers_0_mlp_fc1" in names
    # Linear proj_in in SDXL: 2-D weights.
    assert sd["lora_unet_input_blocks_4_1_proj_in.lora_down.weight"].dim() == 2


def _sdxl_unet_on_meta() -> UNet2DConditionModel:
    # The real SDXL base U-Net architecture, built without memory (meta tensors) to check the names.
    with torch.device("meta"):
        return UNet2DConditionModel(
            sample_size=128, block_out_channels=(320, 640, 1280), layers_per_block=2,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048,
            use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816,
        )


def test_full_size_module_counts_match_sd_scripts_files():
    with torch.device("meta"):
        sd15_unet = UNet2DConditionModel(cross_attention_dim=768)  # the SD1.5 architecture
        clip_l = CLIPTextModel(CLIPTextConfig())
        clip_g = CLIPTextModel(CLIPTextConfig(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                                              num_attention_heads=20))
    sdxl_unet = _sdxl_unet_on_meta()
    assert len(targets.unet_linear_targets(sd15_unet)) == 192
    assert len(targets.text_encoder_targets(clip_l)) == 72
    sdxl = len(targets.unet_linear_targets(sdxl_unet))
    assert sdxl == 70 * 10 + 11 * 2
    assert sdxl + 72 + len(targets.text_encoder_targets(clip_g)) == 986


def test_full_size_sdxl_sgm_names():
    unet = _sdxl_unet_on_meta()
    name = module_namer("sdxl", unet)
    names = {name("unet", p) for p in targets.unet_linear_targets(unet)}
    for expected in ("lora_unet_input_blocks_4_1_proj_in",
                     "lora_unet_input_blocks_8_1_transformer_blocks_9_attn2_to_v",
                     "lora_unet_middle_block_1_transformer_blocks_9_ff_net_0_proj",
                     "lora_unet_output_blocks_5_1_transformer_blocks_0_attn1_to_k",
                     "lora_unet_output_blocks_0_1_transformer_blocks_9_ff_net_2"):
        assert expected in names
    assert not any("output_blocks_6" in n or "input_blocks_1_" in n for n in names)  # no attention there
    conv = {name("unet", p) for p in targets.unet_conv_targets(unet)}
    assert {"lora_unet_input_blocks_3_0_op", "lora_unet_input_blocks_1_0_in_layers_2",
            "lora_unet_output_blocks_2_2_conv", "lora_unet_output_blocks_8_0_out_layers_3"} <= conv


def test_unsupported_family_is_refused(sd15):
    _, lora = sd15
    with pytest.raises(ValueError, match="sd3"):
        to_kohya_state_dict(lora, "sd3")
    with pytest.raises(ValueError, match="not a Flux block Linear"):  # an SD U-Net has no Flux names
        to_kohya_state_dict(lora, "flux")
