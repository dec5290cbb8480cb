"""Starting a run at a later step without a saved state (sd-scripts' initial_step, initial_epoch and
skip_until_initial_step), e.g. to go on from an earlier run's LoRA file. The counters go on from there: step and epoch
numbers in file names, headers and progress; max_train_steps still counts from step 0. Danlu also continues the
learning-rate schedule (sd-scripts restarts it at 0 without resume). skip_until_initial_step leaves out the batches
the earlier run trained in its last epoch; without it that epoch trains from its first batch.

Two tiny data sets: 2 images x 5 repeats in batches of 2 (5 steps an epoch, 10 in the default 2 epochs, all batches
alike) for the rates; 6 images x 1 repeat in batches of 2 (3 different batches an epoch) to see which batches train.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.engine_helpers import make_dataset, save_tiny_sd15, tiny_config
from trainer.config import check, config_from_dict, errors_of
from trainer.config.kohya import export_kohya, import_kohya
from trainer.engine.loop import StepRunner
from trainer.engine.run import train
from trainer.events import read_events
from trainer.networks.save import read_lora

SCHEDULE = {"optimizer__lr_scheduler": "warmup_stable_decay", "optimizer__lr_warmup_steps": 2,
            "optimizer__lr_decay_ratio": 0.5, "optimizer__lr_scheduler_min_lr_ratio": 0.1,
            "optimizer__unet_lr": 1e-3, "optimizer__text_encoder_lr": 5e-4}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_sd15(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def alike(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("alike"), n=2)


@pytest.fixture(scope="module")
def six(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("six"), n=6, folder="1_zk")


def _events(cfg, run_dir: Path) -> list[dict]:
    assert train(cfg, run_dir) == 0, read_events(run_dir)[0][-1]
    return read_events(run_dir)[0]


def _progress(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] == "progress"]


def _rates(progress: list[dict]) -> list[float]:
    """Every group's rate of every step."""
    return [rate for e in progress for _, rate in sorted(e["lr"].items())]


def _trained(cfg, run_dir: Path, monkeypatch) -> tuple[list[tuple[str, ...]], list[dict]]:
    """(the image names of every batch the run trained, in order; its progress events)."""
    seen: list[tuple[str, ...]] = []
    real = StepRunner.step

    def record(self, batch, global_step, sync):
        seen.append(tuple(Path(p).name for p in batch["paths"]))
        return real(self, batch, global_step, sync)

    monkeypatch.setattr(StepRunner, "step", record)
    events = _events(cfg, run_dir)
    monkeypatch.undo()
    return seen, _progress(events)


def test_the_schedule_and_step_numbers_go_on_from_initial_step(tiny_model, alike, tmp_path):
    full = _progress(_events(tiny_config(tiny_model, alike, **SCHEDULE), tmp_path / "full"))
    events = _events(tiny_config(tiny_model, alike, training__initial_step=6, **SCHEDULE), tmp_path / "later")
    later = _progress(events)
    assert [e["step"] for e in later] == [7, 8, 9, 10]  # max_train_steps (10 here) counts from step 0
    assert _rates(later) == pytest.approx(_rates(full[6:]))  # in the decay, past the warm-up
    assert [e["epoch"] for e in later] == [e["epoch"] for e in full[6:]]
    started = next(e for e in events if e["type"] == "started")
    assert started["start_step"] == 6 and started["total_steps"] == 10


def test_skip_until_initial_step_leaves_out_the_batches_already_trained(tiny_model, six, tmp_path, monkeypatch):
    """9 steps (3 epochs of 3 batches); start at step 4, the second batch of epoch 2."""
    cfg = tiny_config(tiny_model, six, training__max_train_epochs=3)
    full, full_events = _trained(cfg, tmp_path / "full", monkeypatch)
    assert len(set(full[:3])) == 3  # the batches of an epoch differ, so the comparisons below mean something
    skipped, events = _trained(cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"initial_step": 4, "skip_until_initial_step": True})}), tmp_path / "skip", monkeypatch)
    assert skipped == full[4:]
    assert [(e["step"], e["epoch"]) for e in events] == [(e["step"], e["epoch"]) for e in full_events[4:]]
    # without skipping, epoch 2 trains from its first batch and the run still ends at step 9
    whole, events = _trained(cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"initial_step": 4})}), tmp_path / "whole", monkeypatch)
    assert whole == full[3:8]
    assert [e["step"] for e in events] == [5, 6, 7, 8, 9] and events[0]["epoch"] == 2


def test_skipping_counts_accumulated_batches(tiny_model, six, tmp_path, monkeypatch):
    """Accumulating 2 batches a step: 3 batches an epoch are 2 steps ([1, 2], [3]); step 3 starts after batch 5."""
    cfg = tiny_config(tiny_model, six, training__max_train_epochs=3, training__gradient_accumulation_steps=2,
                      **{**SCHEDULE, "optimizer__lr_warmup_steps": 1})
    full, full_events = _trained(cfg, tmp_path / "full", monkeypatch)
    later, events = _trained(cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"initial_step": 3, "skip_until_initial_step": True})}), tmp_path / "later", monkeypatch)
    assert later == full[5:]
    assert [e["step"] for e in events] == [4, 5, 6]
    assert _rates(events) == pytest.approx(_rates(full_events[3:]))


def test_initial_epoch_names_the_saves_by_the_epochs_and_steps_they_finish(tiny_model, six, tmp_path):
    """3 steps an epoch, 3 epochs; starting at epoch 2 is starting at step 3."""
    cfg = tiny_config(tiny_model, six, training__max_train_epochs=3, training__initial_epoch=2,
                      save__save_every_n_epochs=1, save__save_every_n_steps=2)
    _events(cfg, tmp_path / "run")
    out = tmp_path / "run" / "output"
    assert sorted(p.name for p in out.glob("*.safetensors")) == [
        "t-000002.safetensors", "t-step00000004.safetensors", "t-step00000006.safetensors",
        "t-step00000008.safetensors", "t.safetensors"]
    header = read_lora(out / "t-000002.safetensors")[1]
    assert (header["ss_epoch"], header["ss_steps"]) == ("2", "6")
    assert read_lora(out / "t.safetensors")[1]["ss_steps"] == "9"


def test_initial_step_overrides_initial_epoch(tiny_model, six, tmp_path):
    cfg = tiny_config(tiny_model, six, training__max_train_epochs=3, training__initial_epoch=3,
                      training__initial_step=7)
    assert [e["step"] for e in _progress(_events(cfg, tmp_path / "run"))] == [8, 9]
    assert any(f.field == "training.initial_epoch" and f.level == "warning" for f in check(cfg))


def test_a_start_at_or_past_the_end_is_refused_before_training(tiny_model, six, tmp_path):
    """The rules cannot count an epoch's steps (that needs the data), so the engine refuses; sd-scripts asserts
    max_train_steps > initial step."""
    cfg = tiny_config(tiny_model, six, training__max_train_epochs=3, training__initial_step=9)
    assert train(cfg, tmp_path / "run") == 1
    events = read_events(tmp_path / "run")[0]
    assert not _progress(events)
    error = next(e for e in events if e["type"] == "error")
    assert "training.initial_step" in error["message"] and "9" in error["message"], error


def test_the_rules_name_what_cannot_work():
    def findings(**groups):
        return [(f.field, f.level) for f in check(config_from_dict(groups), for_training=False)
                if f.field.startswith(("training.initial", "training.skip", "save.resume"))]

    assert findings(training={"max_train_steps": 100, "initial_step": 100}) == [("training.initial_step", "error")]
    assert findings(training={"max_train_steps": 100, "initial_step": 99}) == []
    assert findings(training={"max_train_epochs": 4, "initial_epoch": 5}) == [("training.initial_epoch", "error")]
    assert findings(training={"max_train_epochs": 4, "initial_epoch": 4}) == []
    assert findings(training={"skip_until_initial_step": True}) == [("training.skip_until_initial_step", "warning")]
    both = check(config_from_dict({"training": {"initial_step": 5}, "save": {"resume": "runs/a/output/t-state"}}),
                 for_training=False)
    errors = [f for f in errors_of(both) if f.field == "training.initial_step"]
    assert errors and "save.resume" in errors[0].en and "save.resume" in errors[0].zh, both
    resumed = check(config_from_dict({"training": {"initial_epoch": 2}, "save": {"resume": "x-state"}}),
                    for_training=False)
    assert [f.field for f in errors_of(resumed) if f.field.startswith("training.")] == ["training.initial_epoch"]


def test_sd_scripts_keys_import_and_export():
    cfg = import_kohya({"train_data_dir": "img", "initial_step": 300, "initial_epoch": 2,
                        "skip_until_initial_step": True})
    t = cfg.training
    assert (t.initial_step, t.initial_epoch, t.skip_until_initial_step) == (300, 2, True)
    out = export_kohya(cfg)
    assert (out["initial_step"], out["initial_epoch"], out["skip_until_initial_step"]) == (300, 2, True)
    unset = import_kohya({"train_data_dir": "img"}).training
    assert (unset.initial_step, unset.initial_epoch, unset.skip_until_initial_step) == (None, None, False)
    assert "initial_step" not in export_kohya(config_from_dict({}))
    # set to 0 it still overrides initial_epoch in sd-scripts, so the zero is written
    assert export_kohya(config_from_dict({"training": {"initial_step": 0, "initial_epoch": 3}}))["initial_step"] == 0


def test_an_imported_later_start_says_how_sd_scripts_trains_it_differently():
    notes: list = []
    import_kohya({"train_data_dir": "img", "initial_epoch": 3}, warnings=notes)
    assert [n.field for n in notes] == ["training.initial_epoch"]
    assert "schedule" in notes[0].en and "step-save names" in notes[0].en and "调度" in notes[0].zh
    notes.clear()
    import_kohya({"train_data_dir": "img", "initial_step": 30, "skip_until_initial_step": True}, warnings=notes)
    assert len(notes) == 1 and "step-save names" not in notes[0].en
    notes.clear()
    import_kohya({"train_data_dir": "img", "initial_epoch": 1}, warnings=notes)  # the first epoch: no later start
    assert notes == []


def test_continuing_a_stopped_later_start_resumes_from_its_state(tmp_path):
    """The run panel's Continue resumes a stopped run from its state, which holds the position: the start the run
    was given is cleared, else the continuation would be refused for setting both."""
    from fake_runs import stopped_run

    from trainer.config import load_config, save_config
    from trainer.events import RunSummary
    from ui.runs.view import continuation

    run = tmp_path / "runs" / "20260101-100000-000-later"
    state = stopped_run(run.parent, run.name, "later", tmp_path / "m", tmp_path / "d", step=7)
    cfg, written = load_config(run / "config.toml"), (run / "config.toml").stat().st_mtime
    cfg.training.initial_step, cfg.training.skip_until_initial_step = 4, True
    save_config(cfg, run / "config.toml")
    os.utime(run / "config.toml", (written, written))  # the state is this run's: saved after its config
    summary = RunSummary()
    summary.status = "stopped"
    resumed, step = continuation(run, summary)
    assert (resumed.save.resume, step) == (str(state), 7)
    assert (resumed.training.initial_step, resumed.training.skip_until_initial_step) == (None, False)
    assert not [f for f in check(resumed, for_training=False) if f.field.startswith("training.")]


def test_an_exported_later_start_says_so_too():
    notes: list = []
    export_kohya(config_from_dict({"training": {"initial_step": 30, "skip_until_initial_step": True}}), warnings=notes)
    assert [n.field for n in notes] == ["training.initial_step"] and "schedule" in notes[0].en
    notes.clear()
    export_kohya(config_from_dict({}), warnings=notes)
    assert notes == []
