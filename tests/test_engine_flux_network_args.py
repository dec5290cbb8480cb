"""sd-scripts' lora_flux network_args on a Flux LoRA (trainer/networks/flux_args.py): rank/module dropout and
network_dropout change training, train_blocks and the block index lists decide which blocks carry adapters in
the saved file (which diffusers' Flux loader still takes whole), and what does not apply is refused by name."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from peft.tuners.lora import LoraLayer

from tests.engine_helpers import lora_modules, losses, make_dataset, save_tiny_flux, short_flux_config
from trainer.engine.run import train
from trainer.events import read_events
from trainer.networks.factory import build_network
from trainer.networks.save import read_lora


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_flux(tmp_path_factory.mktemp("model") / "tiny-flux", blocks=(2, 2))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"), n=2)


@pytest.fixture(scope="module")
def base_run(tiny_model, dataset, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("base")
    assert train(short_flux_config(tiny_model, dataset), run_dir) == 0, read_events(run_dir)[0][-1]
    return run_dir


def _net(*args, dropout=0.0):
    return SimpleNamespace(network_module="networks.lora", network_dim=4, network_alpha=2.0, network_args=list(args),
                           conv_dim=0, conv_alpha=0.0, network_dropout=dropout)


@pytest.mark.parametrize("overrides", [{"network__network_args": ["rank_dropout=0.5"]},
                                       {"network__network_args": ["module_dropout=0.5"]},
                                       {"network__network_dropout": 0.5}])
def test_each_dropout_changes_training(tiny_model, dataset, base_run, tmp_path, overrides):
    assert train(short_flux_config(tiny_model, dataset, **overrides), tmp_path / "opt") == 0
    assert losses(tmp_path / "opt") != losses(base_run)


def _transformer_with_lora(*args):
    from trainer.models.tiny import build_tiny_flux

    transformer = build_tiny_flux(seed=0, blocks=(1, 1)).transformer
    net = build_network(_net(*args), "flux", transformer, [], train_text_encoder=False)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in net.unet_params():  # up starts at zero: give every adapter a delta
            p.normal_(std=0.5)
    return transformer, net


def _forward(transformer, train_mode: bool, seed: int = 3) -> torch.Tensor:
    transformer.train(train_mode)
    g = torch.Generator().manual_seed(0)
    inputs = dict(hidden_states=torch.randn(2, 16, 4, generator=g), encoder_hidden_states=torch.randn(2, 8, 32, generator=g),
                  pooled_projections=torch.randn(2, 32, generator=g), timestep=torch.tensor([0.5, 0.5]),
                  img_ids=torch.zeros(16, 3), txt_ids=torch.zeros(8, 3))
    torch.manual_seed(seed)
    with torch.no_grad():
        return transformer(**inputs).sample


def test_module_dropout_skips_adapters_and_rank_dropout_masks_ranks_only_while_training():
    transformer, net = _transformer_with_lora("module_dropout=0.999999")
    trained = _forward(transformer, False)
    net.set_scale(0.0)
    base = _forward(transformer, False)
    net.set_scale(1.0)
    assert (trained - base).abs().max() > 1e-3
    torch.testing.assert_close(_forward(transformer, True), base)  # every adapter skipped in training

    transformer, _ = _transformer_with_lora("rank_dropout=0.5")
    evaluated = _forward(transformer, False)
    dropped = _forward(transformer, True)
    assert (dropped - evaluated).abs().max() > 1e-3  # training masks ranks (and rescales the rest)
    torch.testing.assert_close(_forward(transformer, False), evaluated)


def test_rank_dropout_rescales_the_kept_ranks_so_the_mean_update_is_kept():
    """lora_flux scales the ranks it keeps by 1 / (1 - p): averaged over many masks, a layer's update while training
    is its whole update."""
    transformer, net = _transformer_with_lora("rank_dropout=0.5")
    layer = transformer.get_submodule("transformer_blocks.0.attn.to_q")
    x = torch.randn(1, layer.in_features, generator=torch.Generator().manual_seed(0)).expand(20000, -1)

    def update(train_mode: bool) -> torch.Tensor:
        layer.train(train_mode)
        with torch.no_grad():
            on = layer(x)
            net.set_scale(0.0)
            off = layer(x)
        net.set_scale(1.0)
        return on - off

    whole = update(False)[0]
    torch.manual_seed(0)
    assert (update(True).mean(dim=0) - whole).norm() < 0.05 * whole.norm()


@pytest.mark.parametrize(("args", "kinds"), [
    (["train_blocks=single"], {"single"}),
    (["train_blocks=double"], {"double"}),
    (["train_double_block_indices=1", "train_single_block_indices=none"], {"double"}),
])
def test_train_blocks_and_block_indices_choose_the_blocks_in_the_file(tiny_model, dataset, tmp_path, args, kinds):
    assert train(short_flux_config(tiny_model, dataset, network__network_args=args), tmp_path / "r") == 0
    tensors, _ = read_lora(tmp_path / "r" / "output" / "t.safetensors")
    unet = {m for m in lora_modules(tensors) if m.startswith("lora_unet_")}
    assert {m.split("_")[2] for m in unet} == kinds
    if "train_double_block_indices=1" in args:
        assert {m.split("_")[4] for m in unet} == {"1"}
    else:
        assert {m.split("_")[4] for m in unet} == {"0", "1"}
    assert any(k.startswith("lora_te1_") for k in tensors)  # the text encoder is not a block: still trained


def test_diffusers_flux_loader_takes_every_key_of_a_double_blocks_file(tiny_model, dataset, tmp_path):
    """A double-blocks-only file has no linear1 (whose fused widths diffusers' converter hard-codes for FLUX.1)."""
    from diffusers import FluxPipeline

    assert train(short_flux_config(tiny_model, dataset, network__network_args=["train_blocks=double"]),
                 tmp_path / "r") == 0
    path = tmp_path / "r" / "output" / "t.safetensors"
    tensors, _ = read_lora(path)
    pipe = FluxPipeline.from_pretrained(tiny_model)
    pipe.load_lora_weights(str(path), adapter_name="t")
    unet = [m for m in lora_modules(tensors) if m.startswith("lora_unet_")]
    expected = sum(3 if m.endswith("_qkv") else 1 for m in unet)
    assert sum(isinstance(x, LoraLayer) for x in pipe.transformer.modules()) == expected
    assert not any(isinstance(x, LoraLayer) for n, x in pipe.transformer.named_modules()
                   if n.startswith("single_transformer_blocks"))


@pytest.mark.parametrize(("args", "words"), [
    (["dora_wd=maybe"], ("network.network_args", "dora_wd", "true or false")),  # dora_wd=True: flux_sliced
    (["train_blocks=middle"], ("network.network_args", "train_blocks", "single")),
    (["train_single_block_indices=5"], ("train_single_block_indices", "0-0")),
    (["rank_dropout=1.5"], ("rank_dropout", "below 1")),
    (["split_qkv=False"], ("split_qkv", "remove")),
    (["train_blocks=double", "train_double_block_indices=none"], ("no transformer block",)),
])
def test_what_does_not_apply_is_refused_naming_the_field(args, words):
    from trainer.models.tiny import build_tiny_flux

    with pytest.raises(ValueError) as err:
        build_network(_net(*args), "flux", build_tiny_flux(seed=0).transformer, [], train_text_encoder=False)
    for word in words:
        assert word in str(err.value)


def test_split_qkv_true_is_danlus_layout_and_other_network_modules_are_refused():
    from trainer.models.tiny import build_tiny_flux

    transformer = build_tiny_flux(seed=0).transformer
    net = build_network(_net("split_qkv=True"), "flux", transformer, [], train_text_encoder=False)
    assert net.module_counts()["unet"] == 20  # one LoRA per diffusers Linear, q/k/v apart
    with pytest.raises(ValueError, match="network.network_module: networks.dylora is not supported for Flux yet"):
        build_network(SimpleNamespace(**{**vars(_net()), "network_module": "networks.dylora"}), "flux",
                      build_tiny_flux(seed=0).transformer, [], train_text_encoder=False)
