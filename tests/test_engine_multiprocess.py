"""Two processes under `accelerate launch` (gloo on CPU) train what one process trains with the same global
batch: same steps per epoch, one events stream, one output file, equal weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import free_port, kill_groups, start_in_own_group
from safetensors.torch import load_file

from tests.engine_helpers import make_dataset, save_tiny_sd15, tiny_config
from trainer.config import save_config
from trainer.engine.distributed import rows_of
from trainer.engine.launch import engine_command
from trainer.engine.run import train
from trainer.events import read_events

ROOT = Path(__file__).resolve().parent.parent


def test_rows_split_every_batch_evenly_and_completely():
    for n in range(1, 9):
        rows = [rows_of(n, r, 3) for r in range(3)]
        assert rows[0][0] == 0 and rows[-1][1] == n and all(a[1] == b[0] for a, b in zip(rows, rows[1:], strict=False))
        assert max(b - a for a, b in rows) - min(b - a for a, b in rows) <= 1


def test_one_gpu_runs_plainly_and_several_through_accelerate_launch(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path)
    assert engine_command("py", cfg.speed, ["train"]) == ["py", "-m", "trainer", "train"]
    cfg.speed.gpus, cfg.speed.gpu_ids = 2, "1,3"
    argv = engine_command("py", cfg.speed, ["train"])
    assert argv[:3] == ["py", "-m", "accelerate.commands.launch"] and argv[-3:] == ["-m", "trainer", "train"]
    assert argv[argv.index("--num_processes") + 1] == "2" and argv[argv.index("--gpu_ids") + 1] == "1,3"
    cfg.speed.accelerate_config = "/cluster/accelerate.yaml"  # multi-node: the user's file decides
    assert engine_command("py", cfg.speed, ["train"])[3:5] == ["--config_file", "/cluster/accelerate.yaml"]


@pytest.mark.timeout(600)
def test_two_processes_equal_one_process_with_the_same_global_batch_and_resume_mid_epoch(tmp_path, launched):
    """One 2-process run (batch 1 each) against one process (batch 2), gradient accumulation 2: the same steps,
    one events stream, each file written once, the global batch's loss, equal weights. A 2-process run resumed
    (in 2 processes) from a state saved mid-epoch by it then ends with the same weights. (One run carries both:
    every 2-process launch costs two engine processes' imports, ~15 s.) The resumed run has the DDP options on."""
    model = save_tiny_sd15(tmp_path / "model")
    data = make_dataset(tmp_path / "data", n=5, folder="1_zk")  # global batches of 2, 2 and 1: the last is uneven
    settings = dict(training__max_train_epochs=2, training__gradient_accumulation_steps=2,
                    optimizer__learning_rate=1e-2, save__save_every_n_steps=3, save__save_state=True)
    whole = launched(tiny_config(model, data, training__train_batch_size=1, speed__gpus=2, **settings),
                     tmp_path / "whole")
    assert train(tiny_config(model, data, training__train_batch_size=2, **settings), tmp_path / "one") == 0
    whole = finish(whole)

    events = read_events(whole)[0]
    started = next(e for e in events if e["type"] == "started")
    assert started["steps_per_epoch"] == 2 and started["total_steps"] == 4  # 3 global batches in 2 groups
    steps = [e["step"] for e in events if e["type"] == "progress"]
    assert steps == [1, 2, 3, 4]  # one stream: no second process's lines
    assert [e["type"] for e in events].count("finished") == 1
    files = sorted(p.name for p in (whole / "output").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "one" / "output").iterdir())  # each written once, by one
    assert [e["path"] for e in events if e["type"] == "saved" and e["kind"] == "lora"] == [
        str(whole / "output" / n) for n in ("t-000001.safetensors", "t-step00000003.safetensors", "t.safetensors")]
    assert len(list((whole / "tb").rglob("events.out.tfevents.*"))) == 1
    ref = [e["loss"] for e in read_events(tmp_path / "one")[0] if e["type"] == "progress"]
    got = [e["loss"] for e in events if e["type"] == "progress"]
    assert got == pytest.approx(ref, rel=1e-4)  # the logged loss is the global batch's, averaged
    assert_same_weights(tmp_path / "one" / "output" / "t.safetensors", whole / "output" / "t.safetensors")

    state = whole / "output" / "t-step00000003-state"  # epoch 2 after its first accumulation group
    assert json.loads((state / "progress.json").read_text())["batches_in_epoch"] == 2
    # resumed with sd-scripts' DDP options on, which must not change what is trained (tests/test_ddp_options.py)
    ddp = dict(speed__ddp_static_graph=True, speed__ddp_gradient_as_bucket_view=True, speed__ddp_timeout=5)
    resumed = launched(tiny_config(model, data, training__train_batch_size=1, speed__gpus=2, save__resume=str(state),
                                   **ddp, **settings), tmp_path / "resumed")

    # One process with batch 1 is another global batch: the saved position no longer fits, and the run says so.
    other = tiny_config(model, data, training__train_batch_size=1, save__resume=str(state), **settings)
    assert train(other, tmp_path / "other") == 0
    warned = [e["message"] for e in read_events(tmp_path / "other")[0] if e["type"] == "warning"]
    assert any("saved with 2 images a batch" in w and "this run has 1" in w for w in warned), warned

    resumed = finish(resumed)
    assert [e["step"] for e in read_events(resumed)[0] if e["type"] == "progress"] == [4]
    a, b = load_file(whole / "output" / "t.safetensors"), load_file(resumed / "output" / "t.safetensors")
    assert all(torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-7) for k in a), "a resumed run trained differently"
    assert not [e for e in read_events(resumed)[0] if e["type"] == "warning"]


@pytest.fixture
def launched():
    """launched(cfg, run) starts `cfg` the way the run manager does (accelerate launch for several processes) and
    returns at once: the test trains its one-process reference in the meantime (each launch spends most of its
    time importing torch in its processes). finish() waits for it; a launch a failed test left is killed."""
    procs = []

    def start(cfg, run: Path) -> tuple[subprocess.Popen, Path]:
        run.mkdir()
        save_config(cfg, run / "config.toml")
        argv = engine_command(sys.executable, cfg.speed, ["train", "--config", str(run / "config.toml"),
                                                          "--run-dir", str(run)])
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        procs.append(start_in_own_group(argv, run.parent / f"{run.name}.console", cwd=ROOT, env=env))
        return procs[-1], run

    yield start
    kill_groups(procs)


def finish(started: tuple[subprocess.Popen, Path]) -> Path:
    """The run folder of a launch once it ended well."""
    proc, run = started
    rc = proc.wait(timeout=540)
    assert rc == 0, (run.parent / f"{run.name}.console").read_text()[-6000:]
    return run


def assert_same_weights(one: Path, two: Path) -> None:
    a, b = load_file(one), load_file(two)
    assert a.keys() == b.keys()
    # Float sums in another order, amplified a little by Adam's normalisation of near-zero gradients.
    diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    trained = max(float(a[k].float().abs().max()) for k in a if "lora_up" in k)  # lora_up starts at 0
    assert diff <= 1e-3 * trained, (diff, trained)


def test_the_run_manager_launches_accelerate_for_several_gpus(tmp_path):
    from ui.runs.manager import RunManager

    mgr = RunManager(tmp_path / "runs")
    for gpus, launcher in ((1, False), (2, True)):
        run_dir = tmp_path / f"g{gpus}"
        run_dir.mkdir()
        save_config(tiny_config(tmp_path, tmp_path, speed__gpus=gpus), run_dir / "config.toml")
        cmd = mgr._command(run_dir)
        assert ("accelerate.commands.launch" in cmd) == launcher and cmd[-4:] == [
            "--config", str(run_dir / "config.toml"), "--run-dir", str(run_dir)]
        assert not launcher or cmd[cmd.index("--num_processes") + 1] == "2"


@pytest.mark.timeout(600)
def test_runs_that_leave_trained_weights_without_gradients_work_in_two_processes(tmp_path, launched):
    """DDP must allow unused parameters: a Dreambooth text encoder that stops training (encoded without
    gradients from step 1) and DyLoRA (one rank slice a step) still finish, and match one process."""
    model = save_tiny_sd15(tmp_path / "model")
    data = make_dataset(tmp_path / "data", n=4, folder="1_zk")
    cases = {"dreambooth": dict(model__training_type="dreambooth", dreambooth__stop_text_encoder_training=1),
             "dylora": dict(network__network_module="networks.dylora", network__dylora_unit=2)}
    cases = {name: dict(training__max_train_steps=3, optimizer__learning_rate=1e-3, **settings)
             for name, settings in cases.items()}
    runs = {name: launched(tiny_config(model, data, training__train_batch_size=1, speed__gpus=2, **settings),
                           tmp_path / f"{name}-two") for name, settings in cases.items()}  # both at once
    for name, settings in cases.items():
        one = tmp_path / f"{name}-one"
        assert train(tiny_config(model, data, training__train_batch_size=2, **settings), one) == 0
        run = finish(runs[name])
        assert [e["step"] for e in read_events(run)[0] if e["type"] == "progress"] == [1, 2, 3]
        ref = [e["loss"] for e in read_events(one)[0] if e["type"] == "progress"]
        got = [e["loss"] for e in read_events(run)[0] if e["type"] == "progress"]
        assert got == pytest.approx(ref, rel=1e-3), name


HOST_AGREES = """
import os, sys, time
import torch
import torch.distributed as dist
from trainer.engine.distributed import any_process, host_group

backend = sys.argv[1]
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[2])
dist.init_process_group(backend, rank=0, world_size=1)
group = host_group()
assert (group is None) == (backend == "gloo"), group
assert any_process(True, group) and not any_process(False, group)
if backend == "nccl":  # a step still queued on the GPU: the agreement must not wait for it
    torch.cuda._sleep(2_000_000_000)
    start = time.perf_counter()
    any_process(False, group)
    waited = time.perf_counter() - start
    assert not torch.cuda.current_stream().query(), f"the host waited for the GPU ({waited:.2f} s)"
dist.destroy_process_group()
print("ok")
"""


@pytest.mark.parametrize("backend", ["gloo", pytest.param("nccl", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="NCCL needs a GPU"))])
def test_stop_requests_are_agreed_on_over_the_cpu(backend, tmp_path):
    """Several processes agree on a stop request every step; under NCCL that goes through a gloo group so the
    host does not wait for the GPU's queued steps (what speed.loss_read_every_n_steps is there to avoid)."""
    port = str(free_port())
    out = subprocess.run([sys.executable, "-c", HOST_AGREES, backend, port], capture_output=True, text=True,
                         timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]


ENDS_ITS_GROUP = """
import os, sys
from pathlib import Path
import torch.distributed as dist
from tests.engine_helpers import make_dataset, save_tiny_sd15, tiny_config
from trainer.engine.run import train

tmp = Path(sys.argv[1])
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[2])
dist.init_process_group("gloo", rank=0, world_size=1)  # what accelerate launch sets up in each process
cfg = tiny_config(save_tiny_sd15(tmp / "model"), make_dataset(tmp / "data", n=2), training__max_train_steps=1)
assert train(cfg, tmp / "run") == 0
print("still initialized" if dist.is_initialized() else "closed")
"""


def test_a_run_closes_its_process_group_before_the_process_exits(tmp_path):
    """Left open to the interpreter's exit, a rank of a finished 2-process run once aborted with SIGABRT
    ("terminate called without an active exception") and the launcher reported the run failed."""
    port = str(free_port())
    out = subprocess.run([sys.executable, "-c", ENDS_ITS_GROUP, str(tmp_path), port], capture_output=True, text=True,
                         timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0 and out.stdout.split()[-1:] == ["closed"], out.stdout[-2000:] + out.stderr[-3000:]
