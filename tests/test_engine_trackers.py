"""logging.log_with: wandb (offline here) and "all" get the run's curves; a missing or failing wandb is said
plainly and never ends a run."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

from tests.engine_helpers import losses, make_dataset, save_tiny_sd15, tiny_config
from trainer.config import check
from trainer.engine.run import train
from trainer.events import read_events


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """(tiny SD1.5 model folder, a two-image dataset): one step an epoch."""
    root = tmp_path_factory.mktemp("tiny")
    return save_tiny_sd15(root / "model"), make_dataset(root / "data", n=2, folder="1_zk")


def wandb_run_file(run_dir: Path, wanted: bytes) -> bytes:
    """The offline run's record file, once it holds `wanted`. wandb no longer ships a Python reader for it; its
    history records are protobuf holding each logged key and the JSON text of its value, so both can be found
    in the bytes. wandb's service may still be writing it just after finish() returned: wait a little."""
    found = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(found) == 1, found
    for _ in range(40):
        data = found[0].read_bytes()
        if wanted in data:
            break
        time.sleep(0.5)
    return data


@pytest.mark.parametrize("log_with", ["wandb", "all"])
def test_wandb_offline_run_holds_the_loss(log_with, tiny, tmp_path, monkeypatch):
    pytest.importorskip("wandb")  # an optional dependency (pip install wandb; in the dev extra)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    cfg = tiny_config(*tiny, logging__log_with=log_with, logging__log_tracker_name="danlu-test",
                      training__max_train_epochs=1)
    assert train(cfg, run) == 0
    data = wandb_run_file(run, b"loss/current")
    assert b"loss/current" in data and b"danlu-test" in data  # the project is log_tracker_name
    assert all(json.dumps(loss).encode() in data for loss in losses(run))
    assert (run / "tb").is_dir() == (log_with == "all")  # "all": TensorBoard too
    assert not [e for e in read_events(run)[0] if e["type"] == "warning"]


def test_wandb_that_cannot_start_is_a_warning_and_the_run_goes_on(tiny, tmp_path, monkeypatch):
    from trainer.engine import trackers

    def refuse(self, init):
        raise RuntimeError("api_key not configured (no-tty)")

    monkeypatch.setattr(trackers.WandbCurves, "__init__", refuse)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "wandb" else real(name, *a))
    run = tmp_path / "run"
    assert train(tiny_config(*tiny, logging__log_with="all", training__max_train_epochs=1), run) == 0
    warned = [e["message"] for e in read_events(run)[0] if e["type"] == "warning"]
    assert any("wandb did not start" in w and "api_key" in w for w in warned), warned
    assert list((run / "tb").rglob("events.out.tfevents.*"))  # TensorBoard still got the curves


def test_wandb_not_installed_is_an_error_naming_log_with(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    for value in ("wandb", "all"):
        findings = check(tiny_config(tmp_path, tmp_path, logging__log_with=value), for_training=False)
        assert [(f.field, f.level) for f in findings] == [("logging.log_with", "error")]
        assert "pip install wandb" in findings[0].en
    assert not check(tiny_config(tmp_path, tmp_path, logging__log_with="tensorboard"), for_training=False)


def test_the_settings_reach_the_trackers_only_with_log_config_and_without_paths(tiny, tmp_path):
    """sd-scripts' log_config: off, wandb gets no run config (it used to get all of it, the dataset and model paths
    included, on a cloud service); on, the settings without paths go to wandb's run config and TensorBoard's text."""
    from trainer.engine.trackers import wandb_settings

    model, data = tiny
    plain = tiny_config(model, data, logging__log_with="wandb")
    assert wandb_settings(plain, tmp_path).get("config") is None
    logged = tiny_config(model, data, logging__log_with="all", logging__log_config=True, training__max_train_epochs=1)
    config = wandb_settings(logged, tmp_path)["config"]
    assert config["network"]["network_dim"] == 4 and config["optimizer"]["learning_rate"] == 1e-3
    assert "base_model" not in config["model"] and "train_data_dir" not in config["dataset"]
    assert str(data) not in json.dumps(config) and str(model) not in json.dumps(config)

    def tensorboard_bytes(cfg, run: Path) -> bytes:
        assert train(cfg, run) == 0, read_events(run)[0][-1]
        return b"".join(f.read_bytes() for f in (run / "tb").rglob("events.out.tfevents.*"))

    shown = tensorboard_bytes(tiny_config(model, data, logging__log_config=True, training__max_train_epochs=1),
                              tmp_path / "shown")
    assert b"network_dim = 4" in shown and str(data).encode() not in shown
    hidden = tensorboard_bytes(tiny_config(model, data, training__max_train_epochs=1), tmp_path / "hidden")
    assert b"network_dim" not in hidden
