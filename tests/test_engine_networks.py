"""Training runs with every network type on tiny SD1.5: the file is written in the layout other tools load, with the
header they read, changes the output, continues a later run, and a file of another type is refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.engine_helpers import make_dataset, save_tiny_sd15, tiny_config
from tests.test_networks_lycoris import ALGOS, ARGS, SUFFIXES
from trainer.engine.run import train
from trainer.events import read_events
from trainer.networks.factory import build_network
from trainer.networks.save import read_lora


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_sd15(tmp_path_factory.mktemp("model") / "tiny-sd15")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"), n=2, folder="1_zk")


def _config(model, data, **network):
    cfg = tiny_config(model, data, training__max_train_steps=2, optimizer__learning_rate=1e-2)
    return cfg.model_copy(update={"network": cfg.network.model_copy(update=network)})


def _error(run_dir: Path) -> str:
    return next(e["message"] for e in read_events(run_dir)[0] if e["type"] == "error")


def _output(model: Path, cfg, tensors=None) -> torch.Tensor:
    """The U-Net output of the base model, with the file's network applied when `tensors` is given."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None, requires_safety_checker=False)
    if tensors is not None:
        net = build_network(cfg.network, "sd15", pipe.unet, [pipe.text_encoder])
        net.load_weights(tensors, "sd15")
    gen = torch.Generator().manual_seed(0)
    ids = pipe.tokenizer(["zk, circle"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        return pipe.unet(torch.randn(1, 4, 8, 8, generator=gen), torch.tensor([500]), pipe.text_encoder(ids)[0]).sample


@pytest.mark.parametrize("algo", ALGOS)
def test_a_lycoris_run_writes_a_file_that_loads_back_and_changes_the_output(tiny_model, dataset, tmp_path, algo):
    cfg = _config(tiny_model, dataset, network_module="lycoris.kohya", lycoris_algo=algo, conv_dim=4, conv_alpha=2.0,
                  network_args=ARGS.get(algo, []))
    assert train(cfg, tmp_path / "run") == 0, _error(tmp_path / "run")
    tensors, meta = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    assert any(k.endswith("." + SUFFIXES[algo]) for k in tensors)
    assert all(k.startswith(("lora_unet_", "lora_te_")) for k in tensors)
    assert meta["ss_network_module"] == "lycoris.kohya"
    assert json.loads(meta["ss_network_args"])["algo"] == algo
    assert not torch.allclose(_output(tiny_model, cfg, tensors), _output(tiny_model, cfg), atol=1e-5)


def test_continuing_from_a_lycoris_file_and_refusing_another_type(tiny_model, dataset, tmp_path):
    loha = _config(tiny_model, dataset, network_module="lycoris.kohya", lycoris_algo="loha")
    assert train(loha, tmp_path / "first") == 0
    first = tmp_path / "first" / "output" / "t.safetensors"
    again = loha.model_copy(update={"network": loha.network.model_copy(update={"network_weights": str(first)})})
    assert train(again, tmp_path / "second") == 0, _error(tmp_path / "second")
    tensors, _ = read_lora(first)
    # Continuing starts from the file: with a vanishing learning rate the new file equals the first (a fresh
    # start would hold new random weights).
    still = again.model_copy(update={"optimizer": again.optimizer.model_copy(update={"learning_rate": 1e-12})})
    assert train(still, tmp_path / "still") == 0
    kept, _ = read_lora(tmp_path / "still" / "output" / "t.safetensors")
    assert kept.keys() == tensors.keys()
    assert all(torch.allclose(kept[k], tensors[k], atol=1e-7) for k in tensors)

    lora = _config(tiny_model, dataset, network_weights=str(first))
    assert train(lora, tmp_path / "wrong") != 0
    message = _error(tmp_path / "wrong")
    assert "LoHa" in message and "networks.lora" in message


def _key_norms(tensors: dict[str, torch.Tensor]) -> dict[str, float]:
    """The weight-change norm of every LoRA module in a kohya file."""
    from trainer.networks.max_norm import delta_weight

    names = {k.rsplit(".", 2)[0] for k in tensors if k.endswith(".lora_down.weight")}
    out = {}
    for n in names:
        down, up = tensors[f"{n}.lora_down.weight"], tensors[f"{n}.lora_up.weight"]
        out[n] = float(delta_weight(down, up, float(tensors[f"{n}.alpha"]) / down.shape[0]).norm())
    return out


@pytest.mark.parametrize("module", ["networks.lora", "lycoris.kohya"])
def test_scale_weight_norms_bounds_every_key_and_is_logged(tiny_model, dataset, tmp_path, module):
    limit = 0.02
    cfg = _config(tiny_model, dataset, network_module=module, scale_weight_norms=limit, conv_dim=2)
    cfg = cfg.model_copy(update={"optimizer": cfg.optimizer.model_copy(update={"learning_rate": 5e-2})})
    assert train(cfg, tmp_path / "run") == 0, _error(tmp_path / "run")
    norms = _key_norms(read_lora(tmp_path / "run" / "output" / "t.safetensors")[0])
    assert norms and max(norms.values()) <= limit * 1.001, max(norms.values())
    progress = [e for e in read_events(tmp_path / "run")[0] if e["type"] == "progress"]
    assert all("keys_scaled" in e and "average_key_norm" in e for e in progress)
    assert progress[-1]["keys_scaled"] > 0 and 0 < progress[-1]["average_key_norm"] <= limit * 1.001


def test_block_weights_in_a_run_freeze_zero_blocks_and_halve_the_mid_rate(tiny_model, dataset, tmp_path):
    cfg = _config(tiny_model, dataset, enable_block_weights=True, down_lr_weight="zeros", mid_lr_weight="0.5")
    assert train(cfg, tmp_path / "run") == 0, _error(tmp_path / "run")
    progress = [e for e in read_events(tmp_path / "run")[0] if e["type"] == "progress"]
    assert progress[-1]["lr"]["unet x0.5"] == pytest.approx(0.5 * progress[-1]["lr"]["unet"])
    tensors, _ = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    down_up = [v for k, v in tensors.items() if k.startswith("lora_unet_down_blocks_") and k.endswith("lora_up.weight")]
    other_up = [v for k, v in tensors.items() if k.startswith("lora_unet_up_blocks_") and k.endswith("lora_up.weight")]
    assert down_up and all(torch.count_nonzero(v) == 0 for v in down_up)  # up starts at 0: never updated
    assert other_up and all(torch.count_nonzero(v) > 0 for v in other_up)


def test_base_weights_are_merged_before_training(tiny_model, dataset, tmp_path):
    first = _config(tiny_model, dataset)
    assert train(first, tmp_path / "first") == 0
    lora = tmp_path / "first" / "output" / "t.safetensors"
    cfg = _config(tiny_model, dataset, enable_base_weight=True, base_weights=[str(lora)], base_weights_multiplier=[0.7])
    assert train(cfg, tmp_path / "run") == 0, _error(tmp_path / "run")
    said = [e.get("message", "") for e in read_events(tmp_path / "run")[0] if e["type"] == "status"]
    assert any("merged t.safetensors" in m and "at 0.7" in m for m in said), said
    off = _config(tiny_model, dataset, base_weights=[str(tmp_path / "missing.safetensors")])
    assert train(off, tmp_path / "off") == 0  # the switch is off: nothing is read
    bad = _config(tiny_model, dataset, enable_base_weight=True, base_weights=[str(tmp_path / "missing.safetensors")])
    assert train(bad, tmp_path / "bad") != 0
    assert "missing.safetensors" in _error(tmp_path / "bad")


def _cut(tensors: dict[str, torch.Tensor], rank: int) -> dict[str, torch.Tensor]:
    """A DyLoRA file cut to its first `rank` ranks, alpha scaled so alpha/rank (the layer scale) stays."""
    out = {}
    for key, value in tensors.items():
        if key.endswith("lora_down.weight"):
            out[key] = value[:rank]
        elif key.endswith("lora_up.weight"):
            out[key] = value[:, :rank]
        else:
            name = key.rsplit(".", 1)[0]
            dim = tensors[f"{name}.lora_down.weight"].shape[0]
            out[key] = value * rank / dim
    return out


def test_dylora_file_cut_to_lower_ranks_stays_close_to_full_rank(tiny_model, dataset, tmp_path):
    cfg = _config(tiny_model, dataset, network_module="networks.dylora", network_dim=8, network_alpha=8.0,
                  dylora_unit=2)
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(update={"max_train_steps": 6})})
    assert train(cfg, tmp_path / "run") == 0, _error(tmp_path / "run")
    tensors, meta = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    assert meta["ss_network_module"] == "networks.dylora" and json.loads(meta["ss_network_args"])["unit"] == "2"
    assert {v.shape[0] for k, v in tensors.items() if k.endswith("lora_down.weight")} == {8}
    lora_cfg = _config(tiny_model, dataset, network_dim=8, network_alpha=8.0)
    full, base = _output(tiny_model, cfg, tensors), _output(tiny_model, cfg)
    assert not torch.allclose(full, base, atol=1e-5)
    for rank in (2, 4, 6):
        lora_cfg.network.network_dim = rank
        lora_cfg.network.network_alpha = float(rank)
        cut = _output(tiny_model, lora_cfg, _cut(tensors, rank))  # loads as a plain LoRA of that rank
        assert (cut - full).norm() < (base - full).norm(), rank


def test_lora_rank_and_module_dropout_train_the_same_layers(tiny_model, dataset, tmp_path):
    plain = _config(tiny_model, dataset)
    assert train(plain, tmp_path / "plain") == 0
    cfg = _config(tiny_model, dataset, network_args=["rank_dropout=0.2", "module_dropout=0.1"])
    assert train(cfg, tmp_path / "run") == 0, _error(tmp_path / "run")
    ours, meta = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    theirs, _ = read_lora(tmp_path / "plain" / "output" / "t.safetensors")
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    assert meta["ss_network_module"] == "networks.lora"
    assert json.loads(meta["ss_network_args"]) == {"rank_dropout": "0.2", "module_dropout": "0.1"}
    bad = _config(tiny_model, dataset, network_args=["factor=4"])
    assert train(bad, tmp_path / "bad") != 0
    assert "networks.lora does not take factor" in _error(tmp_path / "bad")


def _continue_unchanged(cfg, path: Path, run_dir: Path):
    """Continue `cfg` from its file at a vanishing learning rate: the new file must equal it (a fresh start would not).
    Returns the continuing config."""
    still = cfg.model_copy(update={"network": cfg.network.model_copy(update={"network_weights": str(path)}),
                                   "optimizer": cfg.optimizer.model_copy(update={"learning_rate": 1e-12})})
    assert train(still, run_dir) == 0, _error(run_dir)
    tensors, kept = read_lora(path)[0], read_lora(run_dir / "output" / "t.safetensors")[0]
    assert kept.keys() == tensors.keys() and all(torch.allclose(kept[k], tensors[k], atol=1e-6) for k in tensors)
    return still


def test_an_oft_run_writes_sd_scripts_oft_that_loads_back_continues_and_refuses_lora(tiny_model, dataset, tmp_path):
    cfg = _config(tiny_model, dataset, network_module="networks.oft", network_dim=4, network_alpha=1e-2)
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(update={"network_train_unet_only": True}),
                                 "optimizer": cfg.optimizer.model_copy(update={"learning_rate": 1e-1})})
    assert train(cfg, tmp_path / "run") == 0, _error(tmp_path / "run")
    path = tmp_path / "run" / "output" / "t.safetensors"
    tensors, meta = read_lora(path)
    assert tensors and all(k.startswith("oft_unet_") and k.endswith((".oft_blocks", ".alpha")) for k in tensors)
    assert meta["ss_network_module"] == "networks.oft"
    assert (meta["ss_network_dim"], meta["ss_network_alpha"]) == ("4", "0.01")
    assert not torch.allclose(_output(tiny_model, cfg, tensors), _output(tiny_model, cfg), atol=1e-5)

    still = _continue_unchanged(cfg, path, tmp_path / "still")
    _continue_under_another_alpha(still, tensors, tmp_path / "other")

    lora = _config(tiny_model, dataset)
    assert train(lora, tmp_path / "lora") == 0
    wrong = still.model_copy(update={"network": still.network.model_copy(
        update={"network_weights": str(tmp_path / "lora" / "output" / "t.safetensors")})})
    assert train(wrong, tmp_path / "wrong") != 0
    message = _error(tmp_path / "wrong")
    assert "LoRA" in message and "networks.oft" in message


def _continue_under_another_alpha(still, tensors: dict, run_dir: Path) -> None:
    """sd-scripts continues an OFT file under the configured network_alpha's constraint; Danlu warns and writes the
    alpha it trained under (the blocks unchanged at lr 1e-12)."""
    other = still.model_copy(update={"network": still.network.model_copy(update={"network_alpha": 5e-3})})
    assert train(other, run_dir) == 0, _error(run_dir)
    kept, meta = read_lora(run_dir / "output" / "t.safetensors")
    assert meta["ss_network_alpha"] == "0.005"
    assert all(float(kept[k]) == pytest.approx(5e-3) if k.endswith(".alpha") else
               torch.allclose(kept[k], tensors[k], atol=1e-6) for k in tensors)
    warned = [e["message"] for e in read_events(run_dir)[0] if e["type"] == "warning" and "constraint" in e["message"]]
    assert len(warned) == 1 and "0.01" in warned[0] and "0.005" in warned[0], warned


def test_a_dora_run_writes_dora_scale_and_continues_from_its_file(tiny_model, dataset, tmp_path):
    cfg = _config(tiny_model, dataset, network_args=["dora_wd=True"])
    assert train(cfg, tmp_path / "run") == 0, _error(tmp_path / "run")
    path = tmp_path / "run" / "output" / "t.safetensors"
    tensors, meta = read_lora(path)
    assert any(k.endswith(".dora_scale") for k in tensors)
    assert meta["ss_network_module"] == "networks.lora" and json.loads(meta["ss_network_args"]) == {"dora_wd": "True"}
    assert not torch.allclose(_output(tiny_model, cfg, tensors), _output(tiny_model, cfg), atol=1e-5)
    still = _continue_unchanged(cfg, path, tmp_path / "still")
    plain = still.model_copy(update={"network": still.network.model_copy(update={"network_args": []})})
    assert train(plain, tmp_path / "plain") != 0
    assert "dora_wd=True" in _error(tmp_path / "plain")


@pytest.mark.parametrize("algo", ["locon", "loha"])
def test_resuming_a_lycoris_max_norm_run_equals_the_uninterrupted_run(tiny_model, dataset, tmp_path, algo):
    """lycoris-lora's max-norm scales a per-module buffer (`scalar`), not the weights: the state must carry it."""
    def run(name, **extra):
        cfg = _config(tiny_model, dataset, network_module="lycoris.kohya", lycoris_algo=algo, scale_weight_norms=0.02)
        cfg = cfg.model_copy(update={
            "optimizer": cfg.optimizer.model_copy(update={"learning_rate": 5e-2}),
            "training": cfg.training.model_copy(update={"max_train_steps": extra.pop("steps", 6)}),
            "save": cfg.save.model_copy(update=extra)})
        assert train(cfg, tmp_path / name) == 0, _error(tmp_path / name)
        return read_lora(tmp_path / name / "output" / "t.safetensors")[0]

    full = run("full")
    run("first", steps=3, save_state=True)
    resumed = run("second", resume=str(tmp_path / "first" / "output" / "t-state"))
    assert progress_scaled(tmp_path / "full")
    assert full.keys() == resumed.keys()
    assert all(torch.allclose(full[k], resumed[k], atol=1e-6) for k in full), \
        max(float((full[k] - resumed[k]).abs().max()) for k in full)


def progress_scaled(run_dir: Path) -> bool:
    """Whether max-norm scaled some key in the run (else the test shows nothing)."""
    return any(e.get("keys_scaled", 0) > 0 for e in read_events(run_dir)[0] if e["type"] == "progress")


def test_early_stop_keeps_the_best_lycoris_max_norm_weights(tiny_model, tmp_path):
    """The best weights early stop restores include lycoris-lora's max-norm scaling (a buffer, not a weight)."""
    data, val_dir = make_dataset(tmp_path / "data", n=2, folder="1_zk"), make_dataset(tmp_path / "val", n=4, folder="1_v")
    cfg = tiny_config(tiny_model, data, validation__validation_dir=str(val_dir), validation__overfit_patience=2,
                      validation__early_stop=True, training__max_train_epochs=14, optimizer__learning_rate=0.1,
                      save__save_every_n_epochs=1, network__network_module="lycoris.kohya",
                      network__scale_weight_norms=1.0)
    assert train(cfg, tmp_path / "run") == 0, _error(tmp_path / "run")
    events = read_events(tmp_path / "run")[0]
    assert progress_scaled(tmp_path / "run")
    best_epoch = next(e["best_epoch"] for e in events if e.get("fit") == "overfit")
    out = tmp_path / "run" / "output"
    best, final = read_lora(out / f"t-{best_epoch:06d}.safetensors")[0], read_lora(out / "t.safetensors")[0]
    assert best.keys() == final.keys() and all(torch.equal(best[k], final[k]) for k in best)
