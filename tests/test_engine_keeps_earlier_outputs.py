"""A run whose save.output_dir already holds files of the same names (a second run of the same config, as with
sd-scripts' output_dir) keeps the earlier files as backups beside the new ones and says so; it never overwrites
them, and it never backs up what it wrote itself."""

from __future__ import annotations

import pytest

from tests.engine_helpers import make_dataset, save_tiny_sd15, tiny_config
from trainer.engine.run import train
from trainer.events import read_events


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return save_tiny_sd15(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), n=2)  # 2 images x 5 repeats / batch 2: 5 steps an epoch


def _train(tiny_model, data, run_dir, out, **overrides):
    cfg = tiny_config(tiny_model, data, save__output_dir=str(out), save__save_every_n_epochs=1,
                      training__max_train_epochs=2, **overrides)
    assert train(cfg, run_dir) == 0, read_events(run_dir)[0][-1]
    return read_events(run_dir)[0]


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_second_run_into_the_same_folder_keeps_the_first_runs_files(tiny_model, data, tmp_path):
    out = tmp_path / "loras"
    _train(tiny_model, data, tmp_path / "runs" / "a", out, save__save_state=True)
    first = _files(out)
    assert {"t.safetensors", "t-000001.safetensors", "t.md"} <= set(first)
    assert any(name.startswith("t-state") for name in {p.name for p in out.iterdir()})

    events = _train(tiny_model, data, tmp_path / "runs" / "b", out, save__save_state=True, training__seed=8)
    now = {p.name: p for p in out.iterdir()}
    for name in ("t.safetensors", "t-000001.safetensors"):
        assert now[name].read_bytes() != first[name], f"{name} is this run's"
        kept = [p for n, p in now.items() if n.startswith(name + ".") and n.endswith(".bak")]
        assert len(kept) == 1 and kept[0].read_bytes() == first[name], f"the first run's {name} is kept"
    for state in ("t-state", "t-000001-state"):
        kept = [p for n, p in now.items() if n.startswith(state + ".") and n.endswith(".bak")]
        assert len(kept) == 1 and kept[0].is_dir() and any(kept[0].iterdir()), f"the old {state} folder is kept"
    assert any(n.startswith("t.md.") for n in now), "the old model card is kept"
    notes = [e["message"] for e in events if e["type"] == "warning" and "already there" in e["message"]]
    assert len(notes) == 5 and all(".bak" in n for n in notes), notes  # one per file or folder kept, naming where


def test_a_run_never_backs_up_its_own_saves(tiny_model, data, tmp_path):
    out = tmp_path / "fresh"
    events = _train(tiny_model, data, tmp_path / "runs" / "a", out, save__save_every_n_steps=2)
    assert not [p for p in out.iterdir() if p.name.endswith(".bak")]
    assert not [e for e in events if e["type"] == "warning" and "already there" in e["message"]]
