"""How many training states a run keeps, apart from its LoRA files (sd-scripts' save_last_n_epochs_state,
save_last_n_steps_state and save_state_on_train_end). A state holds the optimizer's moments, several times the
LoRA's size: keeping every epoch's LoRA but only the newest state is the usual wish."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine_helpers import make_dataset, save_tiny_sd15, tiny_config
from trainer.config import check, config_from_dict
from trainer.config.kohya import import_kohya
from trainer.engine.run import train
from trainer.events import read_events


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_sd15(tmp_path_factory.mktemp("model") / "tiny-sd15")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"), n=2)  # 2 images x 5 repeats / batch 2 = 5 steps an epoch


def _saved(tiny_model, data, run_dir: Path, **overrides) -> tuple[list[str], list[str]]:
    """(LoRA files, state folders) a run left in its output folder."""
    cfg = tiny_config(tiny_model, data, **overrides)
    assert train(cfg, run_dir) == 0, read_events(run_dir)[0][-1]
    out = run_dir / "output"
    return sorted(p.name for p in out.glob("*.safetensors")), sorted(p.name for p in out.glob("*-state"))


def test_epoch_states_are_kept_apart_from_the_files(tiny_model, data, tmp_path):
    files, states = _saved(tiny_model, data, tmp_path / "run", training__max_train_epochs=4, save__save_state=True,
                           save__save_last_n_epochs_state=1)
    assert files == ["t-000001.safetensors", "t-000002.safetensors", "t-000003.safetensors", "t.safetensors"]
    assert states == ["t-000003-state", "t-state"]


def test_step_states_keep_the_last_n_steps(tiny_model, data, tmp_path):
    files, states = _saved(tiny_model, data, tmp_path / "run", training__max_train_epochs=2, save__save_state=True,
                           save__save_every_n_epochs=0, save__save_every_n_steps=2, save__save_last_n_steps_state=4)
    assert files == [f"t-step0000000{n}.safetensors" for n in (2, 4, 6, 8)] + ["t.safetensors"]
    assert states == ["t-state", "t-step00000006-state", "t-step00000008-state"]


def test_without_its_own_count_a_state_goes_with_its_file(tiny_model, data, tmp_path):
    files, states = _saved(tiny_model, data, tmp_path / "run", training__max_train_epochs=3, save__save_state=True,
                           save__save_last_n_epochs=1)
    assert files == ["t-000002.safetensors", "t.safetensors"]
    assert states == ["t-000002-state", "t-state"]


def test_state_on_train_end_saves_only_the_final_state(tiny_model, data, tmp_path):
    files, states = _saved(tiny_model, data, tmp_path / "run", training__max_train_epochs=2,
                           save__save_state_on_train_end=True)
    assert files == ["t-000001.safetensors", "t.safetensors"] and states == ["t-state"]


def test_a_state_count_without_states_is_named():
    cfg = config_from_dict({"save": {"save_last_n_epochs_state": 2}})
    findings = [f for f in check(cfg) if f.field == "save.save_last_n_epochs_state"]
    assert findings and "save_state" in findings[0].en, findings
    for only_final in ({}, {"save_state_on_train_end": True}):  # the final state alone is never pruned
        cfg = config_from_dict({"save": {"save_last_n_steps_state": 2, **only_final}})
        assert [f for f in check(cfg) if f.field == "save.save_last_n_steps_state"]
    ok = config_from_dict({"save": {"save_last_n_epochs_state": 2, "save_state": True}})
    assert not [f for f in check(ok) if f.field.startswith("save.")]


def test_sd_scripts_state_options_import():
    cfg = import_kohya({"train_data_dir": "img", "save_state": True, "save_last_n_steps_state": 1,
                        "save_last_n_epochs_state": 3, "save_state_on_train_end": True})
    s = cfg.save
    assert (s.save_last_n_steps_state, s.save_last_n_epochs_state, s.save_state_on_train_end) == (1, 3, True)


@pytest.mark.parametrize("own_count", [0, 1])
def test_the_best_validation_save_keeps_its_state(tiny_model, tmp_path, own_count):
    """The lowest-validation-loss file is never pruned (see test_engine_validation); its state is not either, with
    or without a state count of its own, so the best point can be resumed from. The validation loss climbs from
    epoch 1 at this learning rate; early stop ends the run at epoch 3."""
    data = make_dataset(tmp_path / "data", n=2, folder="1_zk")
    val_dir = make_dataset(tmp_path / "val", n=4, folder="1_v")
    files, states = _saved(tiny_model, data, tmp_path / "run", validation__validation_dir=str(val_dir),
                           validation__overfit_patience=2, validation__early_stop=True, training__max_train_epochs=14,
                           optimizer__learning_rate=0.1, save__save_every_n_epochs=1, save__save_last_n_epochs=1,
                           save__save_state=True, save__save_last_n_epochs_state=own_count)
    assert files == ["t-000001.safetensors", "t-000003.safetensors", "t.safetensors"]
    assert states == ["t-000001-state", "t-000003-state"]
