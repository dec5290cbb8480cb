"""Validation loss (fixed noise and timesteps, seeded split or folder) and the over/underfitting signal."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.engine_helpers import make_dataset, save_tiny_sd15, tiny_config
from trainer.config import check, errors_of
from trainer.engine.overfit import Evaluation, FitWatch
from trainer.engine.reporter import Reporter
from trainer.engine.run import train
from trainer.engine.session import Session
from trainer.engine.validation import held_out
from trainer.events import read_events


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_sd15(tmp_path_factory.mktemp("model") / "tiny-sd15")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"), n=6, folder="1_zk")


def session_of(cfg, run_dir: Path) -> Session:
    run_dir.mkdir(parents=True)
    s = Session(cfg, run_dir, Reporter(run_dir, None), run_dir / "cache", lambda: False)
    s.setup()
    return s


def test_same_weights_score_the_same_and_training_changes_the_score(tiny_model, dataset, tmp_path):
    s = session_of(tiny_config(tiny_model, dataset, validation__validation_split=0.34), tmp_path / "run")
    assert len(s.val.validator) == 2 and s.data.num_train_images == 4
    first = s.val.validator.evaluate()
    torch.manual_seed(12345)  # the global RNG moved on: nothing at evaluation may depend on it
    random.seed(99)
    assert s.val.validator.evaluate() == first
    for batch in s._loader():
        s.runner.step(batch, 0, sync=True)
    assert s.val.validator.evaluate() != first


def test_the_score_does_not_depend_on_the_batch_size(tiny_model, dataset, tmp_path):
    """Noise belongs to an image, not to a batch position: runs with other batch sizes stay comparable."""
    scores = [session_of(tiny_config(tiny_model, dataset, validation__validation_split=0.5,
                                     training__train_batch_size=bs), tmp_path / f"bs{bs}").val.validator.evaluate()
              for bs in (1, 3)]
    assert scores[0] == pytest.approx(scores[1], rel=1e-5)


def test_max_validation_steps_scores_only_the_first_batches(tiny_model, dataset, tmp_path, monkeypatch):
    """sd-scripts' max_validation_steps: a large validation set costs at most that many batches an evaluation."""
    from trainer.engine.validation import FRACTIONS

    def scored(max_steps: int) -> int:
        s = session_of(tiny_config(tiny_model, dataset, validation__validation_split=0.5, training__train_batch_size=1,
                                   validation__max_validation_steps=max_steps), tmp_path / f"max{max_steps}")
        calls = []
        real = s.runner.loss
        monkeypatch.setattr(s.runner, "loss", lambda *a, **kw: calls.append(1) or real(*a, **kw))
        s.val.validator.evaluate()
        return len(calls)

    assert scored(0) == 3 * len(FRACTIONS)  # every one of the 3 held-out images
    assert scored(2) == 2 * len(FRACTIONS)


def test_split_is_seeded_and_never_holds_out_regularisation_images(tiny_model, tmp_path):
    from trainer.data.scan import scan_dataset

    data = make_dataset(tmp_path / "d", n=10, folder="3_zk")
    reg = make_dataset(tmp_path / "r", n=4, folder="1_person")
    items = scan_dataset(data, reg_dir=reg).items
    picks = {}
    for seed in (1, 1, 2):
        cfg = tiny_config(tiny_model, data, validation__validation_split=0.3, validation__validation_seed=seed)
        train_items, val = held_out(cfg, items, reporter=None)
        assert len(val) == 3 and not any(it.is_reg for it in val)
        assert len(train_items) == len(items) - 3
        picks.setdefault(seed, []).append(sorted(str(it.path) for it in val))
    assert picks[1][0] == picks[1][1] and picks[1][0] != picks[2][0]


def test_a_run_logs_validation_loss_to_events_and_tensorboard(tiny_model, dataset, tmp_path):
    val_dir = make_dataset(tmp_path / "val", n=2, folder="1_v")
    cfg = tiny_config(tiny_model, dataset, validation__validation_dir=str(val_dir),
                      validation__validate_every_n_steps=2, training__max_train_epochs=2)
    assert train(cfg, tmp_path / "run") == 0
    events = read_events(tmp_path / "run")[0]
    vals = [(e["step"], e["epoch"]) for e in events if e["type"] == "validation"]
    assert vals == [(2, 0), (3, 1), (4, 1), (6, 2)]  # 3 steps an epoch: steps 2, 4, 6 and the epoch ends
    assert all(isinstance(e["loss"], float) for e in events if e["type"] == "validation")
    tb_files = list((tmp_path / "run" / "tb").rglob("events.out.tfevents.*"))
    assert tb_files and b"loss/validation" in b"".join(f.read_bytes() for f in tb_files)


def test_overfitting_is_named_and_early_stop_keeps_the_best_file(tiny_model, tmp_path):
    """Two images at a far too high learning rate: the validation loss climbs from epoch 1 while the
    training loss falls. The warning (en and zh) names epoch 1's file; early stop ends the run there, the
    final file holds exactly those weights, and save_last_n_epochs does not prune the best file."""
    data = make_dataset(tmp_path / "data", n=2, folder="1_zk")
    val_dir = make_dataset(tmp_path / "val", n=4, folder="1_v")
    cfg = tiny_config(tiny_model, data, validation__validation_dir=str(val_dir), validation__overfit_patience=2,
                      validation__early_stop=True, training__max_train_epochs=14, optimizer__learning_rate=0.1,
                      save__save_every_n_epochs=1, save__save_last_n_epochs=1)
    run = tmp_path / "run"
    assert train(cfg, run) == 0
    events = read_events(run)[0]
    fit = [e for e in events if e.get("fit") == "overfit"]
    assert len(fit) == 1 and fit[0]["best_epoch"] == 1
    assert "t-000001.safetensors" in fit[0]["message"] and "t-000001.safetensors" in fit[0]["message_zh"]
    assert events[-1]["type"] == "finished" and events[-1]["step"] == 3  # not 14 epochs
    out = run / "output"
    best, final = load_file(out / "t-000001.safetensors"), load_file(out / "t.safetensors")
    assert best.keys() == final.keys() and all(torch.equal(best[k], final[k]) for k in best)
    assert not (out / "t-000002.safetensors").exists()  # pruned as save_last_n_epochs asks; the best stays


def _ev(step, loss, train_loss):
    return Evaluation(step=step, epoch=step, loss=loss, train_loss=train_loss, path=f"t-{step:06d}.safetensors")


def test_rising_validation_is_overfitting_only_while_training_loss_falls():
    watch = FitWatch(patience=2, total_steps=100)
    assert watch.add(_ev(1, 1.0, 1.0)) == []
    assert watch.add(_ev(2, 1.1, 1.1)) == [] and watch.add(_ev(3, 1.2, 1.2)) == []  # both rise: diverging
    watch = FitWatch(patience=2, total_steps=100)
    for step, loss in ((1, 1.0), (2, 0.8), (3, 0.85)):
        assert watch.add(_ev(step, loss, 1.0 - step / 10)) == []
    assert watch.add(_ev(4, 0.9, 0.5)) == ["overfit"] and watch.best.step == 2
    assert watch.add(_ev(5, 0.95, 0.4)) == []  # said once per best evaluation


def test_an_unmoved_validation_loss_after_half_the_run_is_underfitting():
    watch = FitWatch(patience=3, total_steps=100)
    assert watch.add(_ev(10, 1.0, 1.0)) == [] and watch.add(_ev(40, 0.999, 1.0)) == []  # too early to say
    assert watch.add(_ev(50, 0.998, 1.0)) == ["underfit"]
    moving = FitWatch(patience=3, total_steps=100)
    moving.add(_ev(10, 1.0, 1.0))
    assert moving.add(_ev(60, 0.9, 0.9)) == []


def test_validation_settings_that_cannot_work_are_config_errors(tiny_model, dataset):
    both = tiny_config(tiny_model, dataset, validation__validation_split=0.1, validation__validation_dir="/x")
    assert [f.field for f in errors_of(check(both))] == ["validation.validation_dir"]
    lonely = tiny_config(tiny_model, dataset, validation__early_stop=True)
    assert [f.field for f in errors_of(check(lonely))] == ["validation.early_stop"]
