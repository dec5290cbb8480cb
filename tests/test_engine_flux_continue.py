"""Continuing a Flux LoRA (network.network_weights) through the engine: a second run starts from the first run's file
(networks.lora and lycoris.kohya LoCon), and files that cannot be continued end the run with an error naming the
file and what to change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.engine_helpers import make_dataset, save_tiny_flux, short_flux_config
from trainer.engine.run import train
from trainer.events import read_events
from trainer.networks.save import read_lora, save_lora


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_flux(tmp_path_factory.mktemp("model") / "tiny-flux")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"), n=2)


@pytest.fixture(scope="module")
def first(tiny_model, dataset, tmp_path_factory) -> Path:
    """The LoRA file of a 3-step networks.lora run."""
    run_dir = tmp_path_factory.mktemp("first")
    assert train(short_flux_config(tiny_model, dataset), run_dir) == 0
    return run_dir / "output" / "t.safetensors"


def _error(run_dir: Path) -> str:
    return next(e["message"] for e in read_events(run_dir)[0] if e["type"] == "error")


LYCORIS = {"network__network_module": "lycoris.kohya", "network__lycoris_algo": "locon"}


T5 = {"flux__train_t5xxl": True, "training__network_train_unet_only": False}  # CLIP-L (lora_te1_) and T5 (lora_te3_)


@pytest.mark.parametrize("network", [{}, T5, LYCORIS], ids=["lora", "lora-te1-te3", "locon"])
def test_a_second_run_starts_from_the_first_runs_file(tiny_model, dataset, tmp_path, network):
    assert train(short_flux_config(tiny_model, dataset, **network), tmp_path / "first") == 0
    first = tmp_path / "first" / "output" / "t.safetensors"
    tensors, _ = read_lora(first)
    # a vanishing learning rate moves no weight visibly: the second file equals its start, the first file
    # (a fresh start would hold new random downs and zero ups)
    still = short_flux_config(tiny_model, dataset, network__network_weights=str(first),
                              optimizer__learning_rate=1e-12, **network)
    assert train(still, tmp_path / "still") == 0, _error(tmp_path / "still")
    kept, _ = read_lora(tmp_path / "still" / "output" / "t.safetensors")
    assert kept.keys() == tensors.keys()
    assert any(v.abs().max() > 0 for k, v in tensors.items() if "_img_attn_qkv.lora_up" in k)
    assert any(k.startswith("lora_te3_") for k in tensors) == (network is T5)
    for k in tensors:
        torch.testing.assert_close(kept[k], tensors[k], atol=1e-6, rtol=0, msg=k)


def test_files_that_cannot_be_continued_are_named_with_the_fix(tiny_model, dataset, tmp_path, first):
    from trainer.models.tiny import build_tiny_sd15
    from trainer.networks.inject import add_lora

    sd = build_tiny_sd15(seed=0)
    sd_file = save_lora(tmp_path / "sd15-style.safetensors",
                        add_lora(sd.unet, [sd.text_encoder], dim=4, alpha=2.0).kohya_state_dict("sd15"), {},
                        precision="float")
    cfg = short_flux_config(tiny_model, dataset, network__network_weights=str(sd_file))
    assert train(cfg, tmp_path / "sd") != 0
    message = _error(tmp_path / "sd")
    assert "network.network_weights: sd15-style.safetensors: this is not a Flux LoRA" in message
    assert "SD1.5/SDXL" in message

    wider = short_flux_config(tiny_model, dataset, network__network_weights=str(first), network__network_dim=8)
    assert train(wider, tmp_path / "wider") != 0
    message = _error(tmp_path / "wider")
    assert "t.safetensors: " in message and "set network.network_dim = 4" in message


def test_an_sd_scripts_split_qkv_file_continues_from_what_it_renders_and_says_so(tiny_model, dataset, tmp_path, first):
    """sd-scripts' split_qkv=True file: Danlu's block-diagonal layout with the alpha of one split's rank (its issue
    #2204). It loads as loaders apply it (alpha / fused rank) and is written back unchanged, with a warning."""
    tensors, _ = read_lora(first)
    splits = {"img_attn_qkv": 3, "txt_attn_qkv": 3, "linear1": 4}
    for key in [k for k in tensors if k.endswith(".alpha")]:
        n = next((v for part, v in splits.items() if key.endswith(f"_{part}.alpha")), 1)
        tensors[key] = tensors[key] / n
    assert tensors["lora_unet_double_blocks_0_img_attn_qkv.alpha"].item() == 2.0
    path = save_lora(tmp_path / "sd-scripts.safetensors", tensors,
                     {"ss_network_args": json.dumps({"split_qkv": "True"}), "ss_base_model_version": "flux1"},
                     precision="float")
    cfg = short_flux_config(tiny_model, dataset, network__network_weights=str(path), optimizer__learning_rate=1e-12)
    assert train(cfg, tmp_path / "run") == 0, _error(tmp_path / "run")
    warnings = [e["message"] for e in read_events(tmp_path / "run")[0] if e["type"] == "warning"]
    assert any("sd-scripts.safetensors" in w and "split_qkv=True" in w and "#2204" in w for w in warnings)
    kept, _ = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    assert kept.keys() == tensors.keys()
    for k in tensors:
        torch.testing.assert_close(kept[k], tensors[k], atol=1e-6, rtol=0, msg=k)


LOKR = {"network__network_module": "lycoris.kohya", "network__lycoris_algo": "lokr"}
DORA = {"network__network_args": ["dora_wd=True"]}
GLORA = {"network__network_module": "lycoris.kohya", "network__lycoris_algo": "glora"}
DIAG_OFT = {"network__network_module": "lycoris.kohya", "network__lycoris_algo": "diag-oft"}


@pytest.mark.parametrize("network", [LOKR, DORA, GLORA, DIAG_OFT], ids=["lokr", "dora", "glora", "diag-oft"])
def test_a_sliced_file_continues_through_the_engine(tiny_model, dataset, tmp_path, network):
    """LoKr and DoRA files (lycoris_<diffusers path> modules, flux_sliced) load back into the same network: at a
    vanishing learning rate the second run writes the first run's file back."""
    assert train(short_flux_config(tiny_model, dataset, **network), tmp_path / "first") == 0
    first = tmp_path / "first" / "output" / "t.safetensors"
    tensors, _ = read_lora(first)
    assert any(k.startswith("lycoris_") for k in tensors)
    still = short_flux_config(tiny_model, dataset, network__network_weights=str(first),
                              optimizer__learning_rate=1e-12, **network)
    assert train(still, tmp_path / "still") == 0, _error(tmp_path / "still")
    kept, _ = read_lora(tmp_path / "still" / "output" / "t.safetensors")
    assert kept.keys() == tensors.keys()
    assert any(v.abs().max() > 0 for k, v in tensors.items()
               if k.startswith("lycoris_") and k.partition(".")[2] in ("lokr_w2", "lora_up.weight", "b1.weight", "oft_blocks"))
    for k in tensors:
        torch.testing.assert_close(kept[k], tensors[k], atol=1e-6, rtol=0, msg=k)


def test_a_text_encoder_only_run_continues_a_sliced_file(tiny_model, dataset, tmp_path):
    """network_train_text_encoder_only leaves the transformer's lycoris_ modules out (with a warning) and continues
    CLIP-L's."""
    net = {**LOKR, "training__network_train_unet_only": False}
    assert train(short_flux_config(tiny_model, dataset, **net), tmp_path / "first") == 0
    first = tmp_path / "first" / "output" / "t.safetensors"
    tensors, _ = read_lora(first)
    te_only = short_flux_config(tiny_model, dataset, network__network_weights=str(first),
                                optimizer__learning_rate=1e-12, training__network_train_text_encoder_only=True, **net)
    assert train(te_only, tmp_path / "te") == 0, _error(tmp_path / "te")
    warnings = [e["message"] for e in read_events(tmp_path / "te")[0] if e["type"] == "warning"]
    assert any("lycoris_" in w and "were left out" in w for w in warnings), warnings
    kept, _ = read_lora(tmp_path / "te" / "output" / "t.safetensors")
    te = {k for k in tensors if k.startswith("lora_te")}
    assert te and kept.keys() == te
    for k in te:
        torch.testing.assert_close(kept[k], tensors[k], atol=1e-6, rtol=0, msg=k)


@pytest.mark.parametrize("made, given, expected", [
    (DORA, {}, "this is a DoRA file; continue it with network_args dora_wd=True"),
    (LOKR, {}, "network_module = lycoris.kohya, lycoris_algo = lokr"),
    (LOKR, LYCORIS, "network_module = lycoris.kohya, lycoris_algo = lokr"),
], ids=["dora-to-lora", "lokr-to-lora", "lokr-to-locon"])
def test_a_sliced_file_given_to_another_network_is_named(tiny_model, dataset, tmp_path, made, given, expected):
    assert train(short_flux_config(tiny_model, dataset, **made), tmp_path / "first") == 0
    first = tmp_path / "first" / "output" / "t.safetensors"
    cfg = short_flux_config(tiny_model, dataset, network__network_weights=str(first), **given)
    assert train(cfg, tmp_path / "run") != 0
    message = _error(tmp_path / "run")
    assert "t.safetensors: " in message and expected in message, message
