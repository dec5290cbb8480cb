"""lycoris.kohya through lycoris-lora: every algorithm on tiny SD1.5 and SDXL saves in the kohya key layout, loads
back into the same type and reproduces the trained output; arguments an algorithm does not take are named."""

from __future__ import annotations

import pytest
import torch

from trainer.models.tiny import build_tiny_sd15, build_tiny_sdxl
from trainer.networks.lycoris_net import add_lycoris
from trainer.networks.save import read_lora, save_lora

ALGOS = ["locon", "loha", "lokr", "ia3", "dylora", "diag-oft", "boft", "glora", "full"]
# Every algorithm's own file keys (A1111/Forge and ComfyUI read LyCORIS files by these suffixes).
SUFFIXES = {"locon": "lora_down.weight", "loha": "hada_w1_a", "lokr": "lokr_w1", "ia3": "on_input",
            "dylora": "lora_up.weight", "diag-oft": "oft_blocks", "boft": "oft_blocks", "glora": "a1.weight",
            "full": "diff"}
BUILDERS = {"sd15": build_tiny_sd15, "sdxl": build_tiny_sdxl}
# The tiny CLIP's MLP is 37 wide, which BOFT cannot factor: BOFT trains the U-Net's transformers only.
ARGS = {"boft": ["preset=unet-transformer-only"]}


def _text_encoders(pipe, family):
    return [pipe.text_encoder] if family == "sd15" else [pipe.text_encoder, pipe.text_encoder_2]


def _forward(pipe, family) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 8, 8, generator=gen)
    tokens = pipe.tokenizer(["a red circle"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        if family == "sd15":
            return pipe.unet(latents, torch.tensor([500]), pipe.text_encoder(tokens)[0]).sample
        first = pipe.text_encoder(tokens, output_hidden_states=True).hidden_states[-2]
        out2 = pipe.text_encoder_2(tokens, output_hidden_states=True)
        hidden = torch.cat([first, out2.hidden_states[-2]], dim=-1)
        cond = {"text_embeds": out2.text_embeds, "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]])}
        return pipe.unet(latents, torch.tensor([500]), hidden, added_cond_kwargs=cond).sample


def _train_a_little(net) -> None:
    """Move every weight off its start (several algorithms start as the identity)."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)


def _build(family, algo, **kw):
    pipe = BUILDERS[family](seed=0)
    args = dict(family=family, dim=4, alpha=2.0, algo=algo, conv_dim=4, network_args=ARGS.get(algo, [])) | kw
    return pipe, add_lycoris(pipe.unet, _text_encoders(pipe, family), **args)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
@pytest.mark.parametrize("algo", ALGOS)
def test_saved_file_loads_back_and_reproduces_the_output(family, algo, tmp_path):
    base_pipe = BUILDERS[family](seed=0)
    base = _forward(base_pipe, family)
    pipe, net = _build(family, algo)
    _train_a_little(net)
    trained = _forward(pipe, family)
    assert not torch.allclose(trained, base, atol=1e-4), "the network must change the output"

    path = save_lora(tmp_path / "net.safetensors", net.kohya_state_dict(family), {}, precision="float")
    tensors, _ = read_lora(path)
    te_prefixes = ("lora_te_",) if family == "sd15" else ("lora_te1_", "lora_te2_")
    assert all(k.startswith(("lora_unet_", *te_prefixes)) for k in tensors)
    assert any(k.endswith("." + SUFFIXES[algo]) for k in tensors)
    if algo != "boft":
        assert any(k.startswith(te_prefixes[0] + "text_model_encoder_layers_0_") for k in tensors)
    if family == "sdxl":  # the original (SGM) layout, as sd-scripts names SDXL modules
        assert any(k.startswith("lora_unet_input_blocks_") for k in tensors)
        assert not any("down_blocks" in k for k in tensors)

    fresh_pipe, fresh = _build(family, algo)
    fresh.load_weights(tensors, family)
    assert torch.allclose(_forward(fresh_pipe, family), trained, atol=1e-5)


def test_an_argument_the_algorithm_does_not_take_is_named():
    pipe = build_tiny_sd15(seed=0)
    with pytest.raises(ValueError, match=r"LoHa \(lycoris_algo=loha\) does not take factor"):
        add_lycoris(pipe.unet, [pipe.text_encoder], family="sd15", dim=4, alpha=1.0, algo="loha",
                    network_args=["factor=4"])
    with pytest.raises(ValueError, match="does not take no_such_option"):
        add_lycoris(pipe.unet, [pipe.text_encoder], family="sd15", dim=4, alpha=1.0, algo="lokr",
                    network_args=["no_such_option=1"])
    with pytest.raises(ValueError, match="conv_dim"):  # a Danlu field, not a network_args item
        add_lycoris(pipe.unet, [pipe.text_encoder], family="sd15", dim=4, alpha=1.0, algo="locon",
                    network_args=["conv_dim=4"])


def test_algorithm_options_reach_lycoris():
    """factor (LoKr) and the preset change what lycoris builds: they are not ignored."""
    pipe, small = _build("sd15", "lokr", network_args=["factor=2", "preset=attn-mlp"])
    _, default = _build("sd15", "lokr", network_args=["preset=attn-mlp"])
    shapes = lambda n: {k: tuple(v.shape) for k, v in n.kohya_state_dict().items()}  # noqa: E731
    assert shapes(small) != shapes(default)
    assert not any("resnets" in k or "conv_in" in k for k in shapes(small))  # attn-mlp: no conv blocks
    _, full = _build("sd15", "lokr", network_args=["preset=full"])
    assert any("resnets" in k for k in shapes(full))


def test_conv_dim_zero_trains_no_3x3_convolutions():
    _, net = _build("sd15", "locon", conv_dim=None)
    assert not any(k.endswith("conv1.lora_down.weight") for k in net.kohya_state_dict())
    _, conv = _build("sd15", "locon", conv_dim=4)
    assert any(k.endswith("conv1.lora_down.weight") for k in conv.kohya_state_dict())


def test_a_file_of_another_type_is_refused_naming_both():
    _, loha = _build("sd15", "loha")
    _, lokr = _build("sd15", "lokr")
    with pytest.raises(ValueError, match=r"LoHa.*lycoris.kohya algo=lokr"):
        lokr.load_weights(loha.kohya_state_dict())


def test_multiplier_zero_is_the_base_model():
    base = _forward(build_tiny_sd15(seed=0), "sd15")
    pipe, net = _build("sd15", "loha")
    _train_a_little(net)
    net.set_scale(0.0)
    assert torch.allclose(_forward(pipe, "sd15"), base, atol=1e-6)


def test_dora_through_lycoris_locon_saves_dora_scale_and_round_trips(tmp_path):
    """DoRA (weight-decomposed LoRA) is LyCORIS LoCon with dora_wd=True: the file carries dora_scale, which
    ComfyUI and the WebUIs read, and it computes something else than the same weights without it."""
    args = ["dora_wd=True", "preset=attn-mlp"]
    pipe, net = _build("sd15", "locon", network_args=args, conv_dim=None)
    _train_a_little(net)
    trained = _forward(pipe, "sd15")
    tensors = net.kohya_state_dict("sd15")
    assert any(k.endswith(".dora_scale") for k in tensors)
    fresh_pipe, fresh = _build("sd15", "locon", network_args=args, conv_dim=None)
    fresh.load_weights(tensors)
    assert torch.allclose(_forward(fresh_pipe, "sd15"), trained, atol=1e-5)
    plain_pipe, plain = _build("sd15", "locon", network_args=["preset=attn-mlp"], conv_dim=None)
    with pytest.raises(ValueError, match="missing|does not have|dora"):
        plain.load_weights(tensors)


def test_module_and_rank_dropout_reach_the_modules():
    """sd-scripts' meaning through lycoris-lora: module_dropout=1 skips every module while training (the base
    output), rank_dropout drops ranks while training only; evaluation uses the whole network."""
    base = _forward(build_tiny_sd15(seed=0), "sd15")
    pipe, net = _build("sd15", "locon", network_args=["module_dropout=1.0", "preset=attn-mlp"], conv_dim=None)
    _train_a_little(net)
    net.network.train()
    assert torch.allclose(_forward(pipe, "sd15"), base, atol=1e-6)
    net.network.eval()
    assert not torch.allclose(_forward(pipe, "sd15"), base, atol=1e-4)
    pipe, net = _build("sd15", "locon", network_args=["rank_dropout=0.5", "preset=attn-mlp"], conv_dim=None)
    _train_a_little(net)
    net.network.eval()
    steady = _forward(pipe, "sd15")
    net.network.train()
    torch.manual_seed(0)
    assert not torch.allclose(_forward(pipe, "sd15"), steady, atol=1e-6)


@pytest.mark.parametrize("algo", ["locon", "loha", "lokr"])
def test_network_dropout_acts_while_training(algo):
    """lycoris-lora applies `dropout` only in its bypass forward; a rebuilt-weight forward would ignore it."""
    pipe, net = _build("sd15", algo, dropout=0.5, network_args=["preset=attn-mlp"], conv_dim=None)
    _train_a_little(net)
    net.network.eval()
    steady = _forward(pipe, "sd15")
    assert torch.allclose(_forward(pipe, "sd15"), steady, atol=1e-6)
    net.network.train()
    torch.manual_seed(0)
    assert not torch.allclose(_forward(pipe, "sd15"), steady, atol=1e-4)


@pytest.mark.parametrize("algo", ["ia3", "dylora", "diag-oft", "full"])
def test_network_dropout_is_refused_where_lycoris_ignores_it(algo):
    with pytest.raises(ValueError, match="network_dropout"):
        _build("sd15", algo, dropout=0.1, network_args=["preset=attn-mlp"], conv_dim=None)


@pytest.mark.parametrize(("algo", "args"), [("locon", []), ("loha", []), ("lokr", []), ("glora", []),
                                            ("locon", ["rs_lora=True"]), ("glora", ["rs_lora=True"])])
def test_a_file_continued_with_another_network_alpha_computes_what_the_file_says(algo, args, tmp_path):
    """lycoris computes each module's scale once, from the configured alpha: loading must set it from the file's."""
    pipe, net = _build("sd15", algo, network_args=args)
    _train_a_little(net)
    trained = _forward(pipe, "sd15")
    fresh_pipe, fresh = _build("sd15", algo, alpha=8.0, network_args=args)
    fresh.load_weights(net.kohya_state_dict("sd15"), "sd15")
    torch.testing.assert_close(_forward(fresh_pipe, "sd15"), trained, atol=1e-5, rtol=1e-4)
