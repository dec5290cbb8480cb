"""RunManager against real child processes: the engine double (tests/test_ui_runs_double.py) for queue
order, stop, kill, crash and re-attach; the real engine once `python -m trainer train` exists."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainer.config import TrainConfig, load_config
from ui.runs.manager import RunManager

DOUBLE = [sys.executable, str(Path(__file__).with_name("test_ui_runs_double.py"))]
ROOT = Path(__file__).resolve().parents[1]


def wait_for(cond, timeout=20.0, every=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError("condition not met")


def drain(mgr: RunManager, timeout=30.0):
    """Tick the scheduler by hand (no thread) until the queue is empty and nothing runs."""
    def idle():
        mgr.tick()
        return not mgr.queued() and mgr.current() is None
    wait_for(idle, timeout)


@pytest.fixture
def mgr(tmp_path):
    return RunManager(tmp_path / "runs", engine=DOUBLE)


def test_enqueue_writes_config_and_persistent_queue(mgr):
    a = mgr.enqueue(TrainConfig(), "first run")
    b = mgr.enqueue(TrainConfig(), "first run")
    assert a != b and sorted([b, a]) == [a, b]
    assert isinstance(load_config(mgr.run_dir(a) / "config.toml"), TrainConfig)
    assert json.loads((mgr.runs_dir / "queue.json").read_text())["queue"] == [a, b]
    assert RunManager(mgr.runs_dir, engine=DOUBLE).queued() == [a, b]  # survives a restart
    assert mgr.summary(a).status == "queued"
    assert mgr.remove_from_queue(a) and mgr.queued() == [b] and not mgr.run_dir(a).exists()


def test_runs_one_at_a_time_in_order(mgr):
    ids = [mgr.enqueue(TrainConfig(), f"r{i}") for i in range(3)]
    assert mgr.tick() == ids[0] and mgr.current() == ids[0]
    assert mgr.tick() is None  # one training at a time
    drain(mgr)
    runs = mgr.list_runs()
    assert [r for r, _ in runs] == ids[::-1]  # newest first
    starts = [json.loads((mgr.run_dir(i) / "events.jsonl").read_text().splitlines()[0])["time"] for i in ids]
    assert starts == sorted(starts)
    for _, summary in runs:
        assert summary.status == "finished" and summary.step == 6 and len(summary.losses) == 6
        assert Path(summary.outputs[0]).exists()
    assert "step 6/6" in (mgr.run_dir(ids[0]) / "train.log").read_text()


def test_stop_is_graceful_and_kill_marks_killed(mgr):
    slow, victim = mgr.enqueue(TrainConfig(), "slow"), mgr.enqueue(TrainConfig(), "slow-victim")
    mgr.tick()
    wait_for(lambda: mgr.summary(slow).step >= 1)
    mgr.stop(slow)
    wait_for(lambda: mgr.summary(slow).status == "stopped")
    assert mgr.summary(slow).outputs
    assert wait_for(lambda: mgr.tick()) == victim  # as soon as the stopped engine has exited
    wait_for(lambda: mgr.summary(victim).step >= 1)
    mgr.kill(victim)
    assert mgr.current() is None and mgr.summary(victim).status == "killed"


def test_stop_racing_the_launch_still_reaches_the_engine(mgr, monkeypatch):
    """Stop clicked while the run leaves the queue: if the scheduler launches it first, the engine must
    still get the request (the engine honours a STOP written before it starts)."""
    run = mgr.enqueue(TrainConfig(), "slow")
    remove = mgr.remove_from_queue

    def scheduler_first(run_id):
        mgr.tick()  # the scheduler thread wins the race between the queue check and the removal
        return remove(run_id)

    monkeypatch.setattr(mgr, "remove_from_queue", scheduler_first)
    mgr.stop(run)
    assert mgr.current() == run
    wait_for(lambda: mgr.summary(run).status == "stopped")
    assert mgr.summary(run).step <= 1


def test_crash_shows_console_tail(mgr):
    run = mgr.enqueue(TrainConfig(), "crash")
    drain(mgr)
    summary = mgr.summary(run)
    assert summary.status == "crashed" and "boom in the double" in summary.message


def test_restarted_manager_reattaches_to_live_engine(mgr):
    run = mgr.enqueue(TrainConfig(), "long")
    mgr.tick()
    wait_for(lambda: mgr.summary(run).step >= 1)
    fresh = RunManager(mgr.runs_dir, engine=DOUBLE)  # what a UI restart sees
    assert fresh.current() == run and fresh.summary(run).status == "running"
    queued = fresh.enqueue(TrainConfig(), "after")
    assert fresh.tick() is None  # still busy with the adopted run
    fresh.kill(run)
    assert fresh.summary(run).status == "killed"
    assert fresh.tick() == queued
    drain(fresh)


def _real_engine_exists() -> bool:
    probe = subprocess.run([sys.executable, "-m", "trainer", "train", "--help"], cwd=ROOT, capture_output=True)
    return probe.returncode == 0


@pytest.mark.slow
def test_real_engine_through_the_queue(tmp_path):
    """The real `python -m trainer train` launched by the manager: events, TensorBoard, the LoRA file."""
    if not _real_engine_exists():
        pytest.skip("the engine (`python -m trainer train`) is not written yet")
    from tests.engine_helpers import make_dataset, tiny_config
    from trainer.models.tiny import save_tiny

    model = save_tiny("sd15", tmp_path / "tiny-sd15", seed=0)
    data = make_dataset(tmp_path / "data", n=4, folder="1_zk")  # 2 steps: the point is the plumbing
    cfg = tiny_config(model, data, training__max_train_epochs=1)
    mgr = RunManager(tmp_path / "runs")
    run = mgr.enqueue(cfg, "real")
    drain(mgr, timeout=540)
    summary = mgr.summary(run)
    assert summary.status == "finished", summary.message + (mgr.run_dir(run) / "console.log").read_text()[-2000:]
    assert summary.step > 0 and summary.losses and Path(summary.outputs[-1]).exists()
    assert list((mgr.run_dir(run) / "tb").rglob("events.out.tfevents.*"))


def test_delete_removes_an_ended_run_and_refuses_a_live_or_waiting_one(mgr):
    """Freeing the disk of a rented machine from the page: an ended run's folder goes (LoRAs, states, samples);
    the running and the queued ones are refused with what to do first; no path can be smuggled in."""
    long, waiting = mgr.enqueue(TrainConfig(), "long"), mgr.enqueue(TrainConfig(), "waiting")
    mgr.tick()
    wait_for(lambda: mgr.summary(long).step >= 1)
    with pytest.raises(ValueError, match="Stop it first"):
        mgr.delete(long)
    with pytest.raises(ValueError, match="Remove it from the queue first"):
        mgr.delete(waiting)
    mgr.kill(long)
    (mgr.run_dir(long) / "output").mkdir(exist_ok=True)
    (mgr.run_dir(long) / "output" / "big.safetensors").write_bytes(b"x" * 100_000)
    freed = mgr.delete(long)
    assert freed >= 100_000 and not mgr.run_dir(long).exists()
    assert long not in [r for r, _ in mgr.list_runs()] and mgr.queued() == [waiting]
    for bad in ("..", "../runs", "", ".hidden"):
        with pytest.raises(ValueError):
            mgr.delete(bad)
    assert mgr.runs_dir.is_dir() and mgr.run_dir(waiting).is_dir()
