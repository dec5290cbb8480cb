"""A crashed run says how its process ended: the exit code, or the signal that killed it."""

from __future__ import annotations

import pytest

from tests.test_ui_runs_manager import DOUBLE, drain
from trainer.config import TrainConfig
from ui.runs.manager import RunManager
from ui.runs.status import exit_description


@pytest.fixture
def mgr(tmp_path):
    return RunManager(tmp_path / "runs", engine=DOUBLE)


def test_crash_shows_the_exit_code(mgr):
    run = mgr.enqueue(TrainConfig(), "crash")
    drain(mgr)
    summary = mgr.summary(run)
    assert summary.status == "crashed"
    assert "exit code 1" in summary.message and "boom in the double" in summary.message


def test_crash_by_a_signal_names_it(mgr):
    run = mgr.enqueue(TrainConfig(), "segv")
    drain(mgr)
    summary = mgr.summary(run)
    assert summary.status == "crashed"
    assert "SIGSEGV" in summary.message


def test_descriptions(tmp_path):
    from ui.runs.status import record_exit

    assert "unknown" in exit_description(tmp_path)  # adopted after a UI restart: not our child
    record_exit(tmp_path, -9)
    assert "SIGKILL" in exit_description(tmp_path) and "memory" in exit_description(tmp_path)
    record_exit(tmp_path, 2)
    assert exit_description(tmp_path).startswith("The engine ended with exit code 2")
