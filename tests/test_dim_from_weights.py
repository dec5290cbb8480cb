"""network.dim_from_weights (sd-scripts' --dim_from_weights): continuing network_weights with the ranks and alphas
the file holds (each module's own, the convolutions' too), whatever network_dim/network_alpha/conv_dim say; the
header says the dims trained. Refused by name without network_weights and for networks that cannot take them."""

from __future__ import annotations

import json

import pytest
import torch

from tests.engine_helpers import make_dataset, save_tiny_sd15, save_tiny_sdxl, tiny_config
from trainer.config import check, config_from_dict, errors_of, load_config
from trainer.config.kohya import export_kohya
from trainer.engine.run import train
from trainer.events import read_events
from trainer.networks.save import read_lora, save_lora

CONTINUE = {"network__dim_from_weights": True, "network__network_dim": 16, "network__network_alpha": 16.0,
            "network__conv_dim": 0, "optimizer__learning_rate": 1e-12}  # 1e-12 moves no weight visibly


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return save_tiny_sd15(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), n=2)  # 5 steps of batch 2


def train_in(tiny_model, data, tmp_path, **overrides):
    """(exit code, events, run folder) of a one-epoch run in <tmp_path>/runs/run."""
    cfg = tiny_config(tiny_model, data, **{"training__max_train_epochs": 1, **overrides})
    run_dir = tmp_path / "runs" / "run"
    code = train(cfg, run_dir)
    return code, read_events(run_dir)[0], run_dir


def run(tiny_model, data, tmp_path, **overrides):
    code, events, run_dir = train_in(tiny_model, data, tmp_path, **overrides)
    assert code == 0, events[-1]
    return read_lora(run_dir / "output" / "t.safetensors")


@pytest.fixture(scope="module")
def first(tiny_model, data, tmp_path_factory):
    """A LoRA trained at dim 4 / alpha 2 with LoCon convolutions at conv_dim 2 / conv_alpha 1."""
    tmp = tmp_path_factory.mktemp("first")
    run(tiny_model, data, tmp, network__conv_dim=2, network__conv_alpha=1.0)
    return tmp / "runs" / "run" / "output" / "t.safetensors"


def ranks(tensors) -> dict[str, int]:
    return {k.split(".")[0]: t.shape[0] for k, t in tensors.items() if k.endswith("lora_down.weight")}


def conv_modules(tensors) -> set[str]:
    return {k.split(".")[0] for k, t in tensors.items() if k.endswith("lora_down.weight") and t.shape[-1] == 3}


def test_a_continued_run_trains_the_files_ranks_and_alphas_and_says_so(tiny_model, data, tmp_path, first):
    src, _ = read_lora(first)
    assert conv_modules(src) and set(ranks(src).values()) == {2, 4}
    out, header = run(tiny_model, data, tmp_path, network__network_weights=str(first), **CONTINUE)
    assert out.keys() == src.keys()
    assert ranks(out) == ranks(src)  # dim 16 and conv_dim 0 asked for; the file's 4 and 2 trained
    assert all(ranks(out)[m] == 2 for m in conv_modules(src))
    for k in src:  # it starts from the file: alphas and weights as saved
        assert torch.allclose(src[k], out[k]), k
    assert {out[k].item() for k in out if k.endswith(".alpha")} == {2.0, 1.0}
    assert header["ss_network_dim"] == "4" and header["ss_network_alpha"] == "2.0"
    assert json.loads(header["ss_network_args"]) == {"conv_dim": "2", "conv_alpha": "1.0"}
    assert "dim_from_weights = true" in header["danlu_config"]  # the config itself stays as given


def test_without_it_a_file_of_another_dim_is_refused_naming_the_way_out(tiny_model, data, tmp_path, first):
    code, events, _ = train_in(tiny_model, data, tmp_path, network__network_weights=str(first),
                               network__network_dim=16, network__conv_dim=2)
    assert code != 0
    err = events[-1]
    assert err["type"] == "error" and "network_dim" in err["message"]
    assert "network.dim_from_weights" in err["hint"]


def test_each_module_keeps_its_own_rank_and_only_the_files_modules_train(tiny_model, data, tmp_path, first):
    src, meta = read_lora(first)
    linear = sorted(m for m in ranks(src) if m not in conv_modules(src) and m.startswith("lora_unet_"))
    cut, gone = linear[0], linear[1]
    mixed = {k: v for k, v in src.items() if not k.startswith(gone + ".")}
    mixed[f"{cut}.lora_down.weight"] = src[f"{cut}.lora_down.weight"][:2].clone()
    mixed[f"{cut}.lora_up.weight"] = src[f"{cut}.lora_up.weight"][:, :2].clone()
    mixed[f"{cut}.alpha"] = torch.tensor(1.5)
    path = tmp_path / "mixed.safetensors"
    save_lora(path, mixed, meta, precision="float")
    out, header = run(tiny_model, data, tmp_path / "b", network__network_weights=str(path), **CONTINUE)
    assert out.keys() == mixed.keys()  # `gone` is not trained: the network is the file's
    assert ranks(out)[cut] == 2 and out[f"{cut}.alpha"].item() == 1.5
    assert header["ss_network_dim"] == "Dynamic" and header["ss_network_alpha"] == "Dynamic"


def test_a_trained_part_the_file_lacks_is_named(tiny_model, data, tmp_path, first):
    src, meta = read_lora(first)
    path = tmp_path / "unet-only.safetensors"
    save_lora(path, {k: v for k, v in src.items() if k.startswith("lora_unet_")}, meta, precision="float")
    code, events, _ = train_in(tiny_model, data, tmp_path, network__network_weights=str(path), **CONTINUE)
    assert code != 0 and "training.network_train_unet_only" in events[-1]["message"] + events[-1]["hint"]
    out, _ = run(tiny_model, data, tmp_path / "b", network__network_weights=str(path),
                 training__network_train_unet_only=True, **CONTINUE)
    assert ranks(out) == ranks({k: v for k, v in src.items() if k.startswith("lora_unet_")})


def test_an_sdxl_lora_continues_under_its_sgm_names(data, tmp_path):
    sdxl = save_tiny_sdxl(tmp_path / "sdxl")
    run(sdxl, data, tmp_path / "a", model__family="sdxl", network__conv_dim=2, network__conv_alpha=1.0)
    path = tmp_path / "a" / "runs" / "run" / "output" / "t.safetensors"
    src, _ = read_lora(path)
    assert any(k.startswith("lora_unet_input_blocks_") for k in src) and any(k.startswith("lora_te2_") for k in src)
    out, header = run(sdxl, data, tmp_path / "b", model__family="sdxl", network__network_weights=str(path), **CONTINUE)
    assert ranks(out) == ranks(src) and conv_modules(out) == conv_modules(src)
    assert all(torch.allclose(src[k], out[k]) for k in src)
    assert header["ss_network_dim"] == "4" and json.loads(header["ss_network_args"])["conv_dim"] == "2"


@pytest.mark.parametrize("network", [
    {"network__network_args": ["rank_dropout=0.1"]},  # networks.lora trained by lycoris-lora
    {"network__network_module": "networks.dylora", "network__dylora_unit": 2},
    {"network__network_module": "lycoris.kohya", "network__lycoris_algo": "locon"},
], ids=["lora-network_args", "dylora", "lycoris-locon"])
def test_networks_built_by_lycoris_take_the_files_uniform_dims(tiny_model, data, tmp_path, network):
    _, _ = run(tiny_model, data, tmp_path / "a", **network)
    src_path = tmp_path / "a" / "runs" / "run" / "output" / "t.safetensors"
    src, _ = read_lora(src_path)
    out, header = run(tiny_model, data, tmp_path / "b", network__network_weights=str(src_path),
                      **{**CONTINUE, "network__network_dim": 8}, **network)
    assert ranks(out) == ranks(src) and set(ranks(out).values()) == {4}
    for k in src:
        assert torch.allclose(src[k], out[k]), k
    assert header["ss_network_dim"] == "4" and header["ss_network_alpha"] == "2.0"


def test_lycoris_built_networks_refuse_a_file_of_mixed_ranks(tiny_model, data, tmp_path, first):
    src, meta = read_lora(first)
    name = sorted(m for m in ranks(src) if m not in conv_modules(src))[0]
    mixed = {**src, f"{name}.lora_down.weight": src[f"{name}.lora_down.weight"][:2].clone(),
             f"{name}.lora_up.weight": src[f"{name}.lora_up.weight"][:, :2].clone()}
    path = tmp_path / "mixed.safetensors"
    save_lora(path, mixed, meta, precision="float")
    code, events, _ = train_in(tiny_model, data, tmp_path, network__network_weights=str(path),
                               network__network_args=["rank_dropout=0.1"], **CONTINUE)
    assert code != 0
    assert "network.dim_from_weights" in events[-1]["message"] and "rank" in events[-1]["message"]


# --- config ---------------------------------------------------------------------------------------------------

def _errors(**network) -> dict[str, str]:
    cfg = config_from_dict({"model": {"family": network.pop("family", "sd15")}, "network": network})
    return {f.field: f.en for f in errors_of(check(cfg, for_training=False))}


def test_without_network_weights_it_is_refused_by_name():
    errors = _errors(dim_from_weights=True)
    assert "network.dim_from_weights" in errors and "network_weights" in errors["network.dim_from_weights"]
    assert not _errors(dim_from_weights=True, network_weights="/x/a.safetensors")


@pytest.mark.parametrize("network", [
    {"network_module": "networks.oft"},
    {"network_module": "lycoris.kohya", "lycoris_algo": "loha"},
    {"network_module": "lycoris.kohya", "lycoris_algo": "lokr"},
    {"family": "flux"},
])
def test_networks_it_cannot_mean_anything_for_refuse_it(network):
    errors = _errors(dim_from_weights=True, network_weights="/x/a.safetensors", **network)
    assert "network.dim_from_weights" in errors, errors


def test_sd_scripts_import_export_and_the_memory_estimate(tmp_path):
    from trainer.memory.estimate import estimate_memory

    (tmp_path / "t.toml").write_text('network_module = "networks.lora"\nnetwork_weights = "/x/a.safetensors"\n'
                                     "dim_from_weights = true\n", encoding="utf-8")
    cfg = load_config(tmp_path / "t.toml")
    assert cfg.network.dim_from_weights
    assert export_kohya(cfg)["dim_from_weights"] is True
    assert estimate_memory(cfg).total_gb > 0
    (tmp_path / "u.toml").write_text('network_module = "networks.lora"\n', encoding="utf-8")
    assert load_config(tmp_path / "u.toml").network.dim_from_weights is False  # sd-scripts' default


def test_the_kohya_ss_phase_2_preset_imports_past_it(tmp_path, first):
    from tests.test_config_kohya_ss_json import LOCON

    # the keys of kohya_ss' "SDXL - LoRA finetuning phase 2 v1.1" that matter here, with a file that exists
    preset = {**LOCON, "LoRA_type": "Standard", "sdxl": True, "dim_from_weights": True, "network_dim": 128,
              "network_alpha": 128, "conv_dim": 4, "conv_alpha": 4, "lora_network_weights": str(first)}
    (tmp_path / "phase2.json").write_text(json.dumps(preset), encoding="utf-8")
    cfg = load_config(tmp_path / "phase2.json")
    assert cfg.network.dim_from_weights and cfg.network.network_weights == str(first)
    assert not [f for f in errors_of(check(cfg, for_training=False)) if f.field.startswith("network.")]
