"""lycoris.kohya LoCon and LoHa on Flux (trainer/networks/flux_lycoris.py): files in sd-scripts' Flux names whose
fused modules carry exactly the trained split deltas (as ComfyUI applies them), that load back into the same
network and reproduce its output, a Flux run that trains and saves one, and what is refused by name."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from tests.engine_helpers import lora_modules, losses, make_dataset, save_tiny_flux, short_flux_config
from tests.engine_helpers import render_tiny_flux as _render
from trainer.engine.run import train
from trainer.events import read_events
from trainer.models.tiny import build_tiny_flux
from trainer.networks.factory import build_network
from trainer.networks.save import read_lora, save_lora

FUSED = {"transformer_blocks.0.attn.to_q": ("lora_unet_double_blocks_0_img_attn_qkv", 0),
         "transformer_blocks.0.attn.add_v_proj": ("lora_unet_double_blocks_0_txt_attn_qkv", 64),
         "single_transformer_blocks.0.proj_mlp": ("lora_unet_single_blocks_0_linear1", 96),
         "single_transformer_blocks.0.proj_out": ("lora_unet_single_blocks_0_linear2", 0)}


def _net(algo, *args, dropout=0.0):
    return SimpleNamespace(network_module="lycoris.kohya", lycoris_algo=algo, network_dim=4, network_alpha=2.0,
                           network_args=list(args), conv_dim=0, conv_alpha=0.0, network_dropout=dropout)


def _build(algo, seed=0):
    pipe = build_tiny_flux(seed=0, blocks=(1, 1))
    net = build_network(_net(algo), "flux", pipe.transformer, [pipe.text_encoder])
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():  # lycoris starts with a zero delta: give every module one
            p.normal_(std=0.3)
    return pipe, net


def _file_delta(tensors, name, algo) -> torch.Tensor:
    """The delta ComfyUI applies for a file module at strength 1: alpha / rank x the algorithm's product."""
    t = {k.partition(".")[2]: v.float() for k, v in tensors.items() if k.startswith(name + ".")}
    if algo == "locon":
        return t["lora_up.weight"] @ t["lora_down.weight"] * (t["alpha"] / t["lora_down.weight"].shape[0])
    return ((t["hada_w1_a"] @ t["hada_w1_b"]) * (t["hada_w2_a"] @ t["hada_w2_b"])
            * (t["alpha"] / t["hada_w1_b"].shape[0]))


def _live_delta(net, linear: torch.nn.Linear) -> torch.Tensor:
    """The trained layer's delta, measured: its output on the identity at weight 1 minus weight 0."""
    eye = torch.eye(linear.in_features)
    with torch.no_grad():
        net.set_scale(1.0)
        on = linear(eye)
        net.set_scale(0.0)
        off = linear(eye)
    net.set_scale(1.0)
    return (on - off).T


@pytest.mark.parametrize("algo", ["locon", "loha"])
def test_fused_flux_names_carry_exactly_each_trained_split(algo):
    pipe, net = _build(algo)
    tensors = net.kohya_state_dict("flux")
    assert {m for m in lora_modules(tensors) if m.startswith("lora_unet_")} >= {n for n, _ in FUSED.values()}
    assert any(m.startswith("lora_te1_text_model_encoder_layers_0_") for m in lora_modules(tensors))
    for path, (name, row) in FUSED.items():
        linear = pipe.transformer.get_submodule(path)
        live = _live_delta(net, linear)
        assert live.abs().max() > 1e-3
        torch.testing.assert_close(_file_delta(tensors, name, algo)[row:row + linear.out_features], live,
                                   atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("algo", ["locon", "loha"])
def test_saved_file_loads_back_and_reproduces_the_output(algo, tmp_path):
    pipe, net = _build(algo)
    trained = _render(pipe.transformer)
    net.set_scale(0.0)
    assert (trained - _render(pipe.transformer)).abs().max() > 1e-3  # the adapters change the output
    net.set_scale(1.0)
    save_lora(tmp_path / "f.safetensors", net.kohya_state_dict("flux"), {}, precision="float")
    fresh_pipe = build_tiny_flux(seed=0, blocks=(1, 1))
    fresh = build_network(_net(algo), "flux", fresh_pipe.transformer, [fresh_pipe.text_encoder])
    fresh.load_weights(read_lora(tmp_path / "f.safetensors")[0], "flux")
    torch.testing.assert_close(_render(fresh_pipe.transformer), trained, atol=1e-5, rtol=1e-5)
    other = build_network(_net("loha" if algo == "locon" else "locon"), "flux",
                          build_tiny_flux(seed=0, blocks=(1, 1)).transformer, [])
    with pytest.raises(ValueError, match="network"):
        other.load_weights(read_lora(tmp_path / "f.safetensors")[0], "flux")


def test_a_flux_loha_run_trains_and_saves_sd_scripts_flux_names(tmp_path):
    model = save_tiny_flux(tmp_path / "model")
    data = make_dataset(tmp_path / "data", n=2)
    cfg = short_flux_config(model, data, network__network_module="lycoris.kohya", network__lycoris_algo="loha")
    assert train(cfg, tmp_path / "run") == 0, read_events(tmp_path / "run")[0][-1]
    tensors, meta = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    assert tensors["lora_unet_double_blocks_0_img_attn_qkv.hada_w1_a"].shape == (96, 12)
    assert tensors["lora_unet_single_blocks_0_linear1.hada_w2_b"].shape == (16, 32)
    assert tensors["lora_unet_double_blocks_0_img_attn_qkv.alpha"].item() == 6.0
    assert tensors["lora_unet_double_blocks_0_img_mlp_0.hada_w1_a"].abs().max() > 0
    assert meta["ss_base_model_version"] == "flux1" and json.loads(meta["ss_network_args"])["algo"] == "loha"
    assert meta["ss_network_module"] == "lycoris.kohya"
    assert len(losses(tmp_path / "run")) == 3


@pytest.mark.parametrize(("algo", "args", "words"), [
    ("ia3", [], ("network.lycoris_algo", "ia3", "no IA3 loader", "locon, loha, lokr, glora, diag-oft")),
    ("locon", ["use_scalar=True"], ("network.network_args", "use_scalar", "rank_dropout", "dora_wd=True")),
    ("loha", ["preset=full"], ("network.network_args", "preset")),
])
def test_what_flux_names_cannot_hold_is_refused_naming_the_field(algo, args, words):
    with pytest.raises(ValueError) as err:
        build_network(_net(algo, *args), "flux", build_tiny_flux(seed=0).transformer, [])
    for word in words:
        assert word in str(err.value)


def test_train_t5xxl_with_lycoris_is_refused_not_left_untrained():
    from trainer.models.tiny import tiny_t5_encoder

    pipe = build_tiny_flux(seed=0)
    with pytest.raises(ValueError, match="flux.train_t5xxl"):
        build_network(_net("locon"), "flux", pipe.transformer, [pipe.text_encoder, tiny_t5_encoder()])


def test_the_config_rule_names_exactly_the_algorithms_flux_lycoris_maps():
    from trainer.config.rules_flux import FLUX_LYCORIS_ALGOS
    from trainer.networks.flux_lycoris import FLUX_ALGOS

    assert FLUX_ALGOS == FLUX_LYCORIS_ALGOS


def test_every_schema_algorithm_is_taken_or_refused_with_its_reason_on_flux():
    import typing

    from trainer.config.groups_network import NetworkGroup
    from trainer.config.rules_flux import FLUX_LYCORIS_ALGOS, REFUSED_ALGOS

    schema = set(typing.get_args(NetworkGroup.model_fields["lycoris_algo"].annotation))
    assert set(FLUX_LYCORIS_ALGOS) | set(REFUSED_ALGOS) == schema
    assert not set(FLUX_LYCORIS_ALGOS) & set(REFUSED_ALGOS)
    assert all(en and zh for en, zh in REFUSED_ALGOS.values())


def test_config_check_names_lycoris_algo_for_flux(tmp_path):
    from trainer.config import check

    cfg = short_flux_config(tmp_path / "m", tmp_path / "d", network__network_module="lycoris.kohya",
                            network__lycoris_algo="ia3")
    mine = [f for f in check(cfg, for_training=False) if f.field == "network.lycoris_algo"]
    assert len(mine) == 1 and mine[0].level == "error" and "locon, loha, lokr, glora, diag-oft" in mine[0].en
    assert "IA3" in mine[0].en and "IA3" in mine[0].zh
    ok = short_flux_config(tmp_path / "m", tmp_path / "d", network__network_module="lycoris.kohya",
                           network__lycoris_algo="loha")
    assert not [f for f in check(ok, for_training=False) if f.field.startswith("network.")]
    t5 = short_flux_config(tmp_path / "m", tmp_path / "d", network__network_module="lycoris.kohya",
                           flux__train_t5xxl=True, speed__cache_text_encoder_outputs=False)
    mine = [f for f in check(t5, for_training=False) if f.field == "flux.train_t5xxl"]
    assert len(mine) == 1 and "networks.lora" in mine[0].en
    # a conv rank would be ignored (the Flux builders adapt Linears only): the check refuses it before a run
    conv = short_flux_config(tmp_path / "m", tmp_path / "d", network__network_module="lycoris.kohya",
                             network__conv_dim=4)
    assert [f.level for f in check(conv, for_training=False) if f.field == "network.conv_dim"] == ["error"]


@pytest.mark.parametrize("algo", ["locon", "loha"])
def test_lycoris_trains_on_an_fp8_stored_flux_transformer(algo, tmp_path):
    """Bypass mode (base output + adapter output) never rebuilds the fp8 base weight, which CPU kernels refuse."""
    model = save_tiny_flux(tmp_path / "model")
    data = make_dataset(tmp_path / "data", n=2)
    cfg = short_flux_config(model, data, network__network_module="lycoris.kohya", network__lycoris_algo=algo,
                            speed__fp8_base=True)
    from trainer.engine.build import load_models
    from trainer.engine.fp8 import stored_fp8_share
    from trainer.engine.precision import resolve_precision

    prec = resolve_precision("no", full_fp16=False, full_bf16=False, no_half_vae=False, device="cpu", warn=print)
    assert stored_fp8_share(load_models(cfg, prec, tmp_path / "models", print, print).unet) > 0.5  # fp8 base kept
    assert train(cfg, tmp_path / "run") == 0, read_events(tmp_path / "run")[0][-1]
    tensors, _ = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    assert any(k.startswith("lora_unet_double_blocks_0_img_attn_qkv.") for k in tensors)


def test_a_flux_lycoris_run_resumed_from_its_state_equals_the_uninterrupted_run(tmp_path):
    model = save_tiny_flux(tmp_path / "model")
    data = make_dataset(tmp_path / "data", n=2)
    common = dict(network__network_module="lycoris.kohya", network__lycoris_algo="loha", training__max_train_steps=4)
    assert train(short_flux_config(model, data, **common), tmp_path / "full") == 0
    first = short_flux_config(model, data, **{**common, "training__max_train_steps": 2}, save__save_state=True)
    assert train(first, tmp_path / "first") == 0
    second = short_flux_config(model, data, **common, save__resume=str(tmp_path / "first" / "output" / "t-state"))
    assert train(second, tmp_path / "second") == 0, read_events(tmp_path / "second")[0][-1]
    assert losses(tmp_path / "second") == pytest.approx(losses(tmp_path / "full")[2:], rel=1e-5)
    a, b = (read_lora(tmp_path / r / "output" / "t.safetensors")[0] for r in ("full", "second"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)

