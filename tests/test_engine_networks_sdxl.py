"""Network types in SDXL training runs: LyCORIS (LoHa, LoKr), DyLoRA and block weights on the tiny SDXL model write
files with sd-scripts' SDXL names (te1/te2, original block layout) that load back and change the output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.engine_helpers import make_dataset, save_tiny_sdxl, tiny_config
from trainer.engine.run import train
from trainer.events import read_events
from trainer.networks.factory import build_network
from trainer.networks.save import read_lora


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_sdxl(tmp_path_factory.mktemp("model") / "tiny-sdxl")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"), n=2, folder="1_zk")


def _config(model, data, **network):
    cfg = tiny_config(model, data, model__family="sdxl", training__max_train_steps=2, optimizer__learning_rate=1e-2)
    return cfg.model_copy(update={"network": cfg.network.model_copy(update=network)})


def _unet_out(model: Path, cfg, tensors=None) -> torch.Tensor:
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(model)
    if tensors is not None:
        build_network(cfg.network, "sdxl", pipe.unet, [pipe.text_encoder, pipe.text_encoder_2]).load_weights(
            tensors, "sdxl")
    gen = torch.Generator().manual_seed(0)
    c = pipe.unet.config
    hidden = torch.randn(1, 77, c.cross_attention_dim, generator=gen)
    pooled = c.projection_class_embeddings_input_dim - 6 * c.addition_time_embed_dim
    cond = {"text_embeds": torch.randn(1, pooled, generator=gen), "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]])}
    with torch.no_grad():
        return pipe.unet(torch.randn(1, 4, 8, 8, generator=gen), torch.tensor([500]), hidden,
                         added_cond_kwargs=cond).sample


@pytest.mark.parametrize(("module", "extra", "suffix"), [
    ("lycoris.kohya", {"lycoris_algo": "loha"}, "hada_w1_a"),
    ("lycoris.kohya", {"lycoris_algo": "lokr"}, "lokr_w1"),
    ("networks.dylora", {"network_dim": 4, "dylora_unit": 2}, "lora_up.weight"),
])
def test_sdxl_run_writes_a_file_in_sdxl_names_that_loads_back(tiny_model, dataset, tmp_path, module, extra, suffix):
    cfg = _config(tiny_model, dataset, network_module=module, **extra)
    assert train(cfg, tmp_path / "run") == 0, read_events(tmp_path / "run")[0][-1]
    tensors, meta = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    assert any(k.endswith("." + suffix) for k in tensors)
    assert {k.split("_", 2)[1] for k in tensors} == {"unet", "te1", "te2"}
    assert any(k.startswith("lora_unet_input_blocks_") for k in tensors) and not any("down_blocks" in k for k in tensors)
    assert meta["ss_network_module"] == module and meta["ss_base_model_version"].startswith("sdxl")
    if module == "lycoris.kohya":
        assert json.loads(meta["ss_network_args"])["algo"] == extra["lycoris_algo"]
    assert not torch.allclose(_unet_out(tiny_model, cfg, tensors), _unet_out(tiny_model, cfg), atol=1e-5)


def test_sdxl_block_weights_freeze_input_blocks(tiny_model, dataset, tmp_path):
    # SDXL has three middle blocks (sd-scripts' numbering): the attention sits in middle_block.1, the second weight
    cfg = _config(tiny_model, dataset, enable_block_weights=True, down_lr_weight="zeros", mid_lr_weight="1,0.5")
    assert train(cfg, tmp_path / "run") == 0, read_events(tmp_path / "run")[0][-1]
    progress = [e for e in read_events(tmp_path / "run")[0] if e["type"] == "progress"]
    assert progress[-1]["lr"]["unet x0.5"] == pytest.approx(0.5 * progress[-1]["lr"]["unet"])
    tensors, _ = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    frozen = [v for k, v in tensors.items() if k.startswith("lora_unet_input_blocks_") and k.endswith("lora_up.weight")]
    trained = [v for k, v in tensors.items() if k.startswith("lora_unet_output_blocks_") and k.endswith("lora_up.weight")]
    assert frozen and all(torch.count_nonzero(v) == 0 for v in frozen)
    assert trained and all(torch.count_nonzero(v) > 0 for v in trained)


def test_sdxl_oft_run_writes_sd_scripts_oft_names_that_load_back(tiny_model, dataset, tmp_path):
    cfg = _config(tiny_model, dataset, network_module="networks.oft", network_dim=4, network_alpha=1e-2,
                  network_args=["enable_all_linear=True"])
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(update={"network_train_unet_only": True}),
                                 "optimizer": cfg.optimizer.model_copy(update={"learning_rate": 1e-1})})
    assert train(cfg, tmp_path / "run") == 0, read_events(tmp_path / "run")[0][-1]
    tensors, meta = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    assert tensors and all(k.startswith("oft_unet_") and k.endswith((".oft_blocks", ".alpha")) for k in tensors)
    assert any(k.startswith("oft_unet_input_blocks_") and "_ff_net_2." in k for k in tensors)
    assert not any("down_blocks" in k for k in tensors)
    assert meta["ss_network_module"] == "networks.oft"
    assert json.loads(meta["ss_network_args"]) == {"enable_all_linear": "True"}
    assert not torch.allclose(_unet_out(tiny_model, cfg, tensors), _unet_out(tiny_model, cfg), atol=1e-5)
