"""speed.loss_read_every_n_steps: losses read back N steps at a time, every step still logged with its own
value, and a blown-up loss still caught (before any save) when it is read."""

from __future__ import annotations

import pytest

from tests.engine_helpers import losses, make_dataset, save_tiny_sd15, tiny_config
from trainer.engine.loop import StepRunner
from trainer.engine.readback import LossReadback
from trainer.engine.run import train
from trainer.events import read_events


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("readback")
    return save_tiny_sd15(root / "model"), make_dataset(root / "data")


def counted_reads(monkeypatch) -> list[int]:
    """Appends 1 for each read that transferred losses."""
    reads, real = [], LossReadback.read

    def read(self):
        out = real(self)
        reads.extend([1] if out else [])
        return out

    monkeypatch.setattr(LossReadback, "read", read)
    return reads


def test_every_step_is_logged_with_the_same_losses_in_fewer_reads(setup, tmp_path, monkeypatch):
    model, data = setup
    reads = counted_reads(monkeypatch)
    assert train(tiny_config(model, data, training__max_train_steps=6), tmp_path / "each") == 0
    each, each_reads = losses(tmp_path / "each"), len(reads)
    reads.clear()
    cfg = tiny_config(model, data, training__max_train_steps=6, speed__loss_read_every_n_steps=3)
    assert train(cfg, tmp_path / "batched") == 0
    assert (each_reads, len(reads)) == (6, 2)
    assert losses(tmp_path / "batched") == each  # same values, one per step, in order
    progress = [e for e in read_events(tmp_path / "batched")[0] if e["type"] == "progress"]
    assert [e["step"] for e in progress] == [1, 2, 3, 4, 5, 6]
    times = [e["time"] for e in progress]
    assert times == sorted(times) and times[0] < times[2]  # each step's own time, not the time it was read


def test_a_blown_up_loss_is_caught_before_the_next_save(setup, tmp_path, monkeypatch):
    model, data = setup
    calls, real = [], StepRunner.loss

    def loss(self, batch, **kw):
        calls.append(1)
        value = real(self, batch, **kw)
        return value * float("nan") if len(calls) == 2 else value

    monkeypatch.setattr(StepRunner, "loss", loss)
    cfg = tiny_config(model, data, training__max_train_steps=8, speed__loss_read_every_n_steps=4,
                      save__save_every_n_steps=3)
    assert train(cfg, tmp_path / "run") == 1
    events = read_events(tmp_path / "run")[0]
    error = next(e for e in events if e["type"] == "error")
    assert "at step 2" in error["message"] and "nan" in error["message"]
    assert not [e for e in events if e["type"] == "saved"]  # the step-3 save never wrote NaN weights
    assert [e["step"] for e in events if e["type"] == "progress"] == []


def test_n_counts_optimizer_steps_not_accumulated_batches(setup, tmp_path, monkeypatch):
    model, data = setup
    reads = counted_reads(monkeypatch)
    cfg = tiny_config(model, data, training__max_train_steps=4, training__gradient_accumulation_steps=2,
                      speed__loss_read_every_n_steps=2)
    assert train(cfg, tmp_path / "run") == 0
    assert len(reads) == 2  # steps 1-2 and 3-4, each two batches
    assert [e["step"] for e in read_events(tmp_path / "run")[0] if e["type"] == "progress"] == [1, 2, 3, 4]
