"""bench/gpu_session.sh, issue 18's one-call GPU check, runs end to end on a CPU (DANLU_GPU_DRYRUN=1, tiny models):
every section writes its result file with measured rows, and a section that fails or hangs neither stops nor
spoils the others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import kill_groups, start_in_own_group

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ["sdxl", "sdscripts", "switches", "flux_attention"]


FAULTS = ("--only", "sdxl", "switches", "flux_attention", "--limit", "switches=4")


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """Both sessions of this module start together: each runs one section process at a time, mostly importing
    torch on one core, so the fault-injection session runs beside the dry run instead of after it. name ->
    (the finished session, its OUT); a session no test waited for is killed."""
    started = {"dry": start(tmp_path_factory.mktemp("dry")),
               "faults": start(tmp_path_factory.mktemp("faults"), *FAULTS,
                               DANLU_GPU_SESSION_FAULT="sdxl=fail,switches=hang")}

    def finished(name: str) -> tuple[subprocess.CompletedProcess, Path]:
        proc, out = started[name]
        rc = proc.wait(timeout=900)
        stdout, stderr = ((out.parent / f"session.{kind}").read_text() for kind in ("stdout", "stderr"))
        return subprocess.CompletedProcess(proc.args, rc, stdout, stderr), out

    yield finished
    kill_groups(proc for proc, _ in started.values())


def start(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.Popen, Path]:
    """bench/gpu_session.sh's dry run, started and left running; its OUT folder."""
    out = tmp_path / "out"
    proc = start_in_own_group(["bash", str(ROOT / "bench" / "gpu_session.sh"), "--out", str(out),
                               "--work", str(tmp_path / "work"), *args],
                              tmp_path / "session.stdout", tmp_path / "session.stderr", cwd=ROOT,
                              env={**os.environ, "PYTHON": sys.executable, "DANLU_GPU_DRYRUN": "1", **env})
    return proc, out


def result(out: Path, name: str) -> dict:
    return json.loads((out / f"{name}.json").read_text())


def test_dry_run_measures_every_section_and_fits_what_a_device_call_returns(sessions):
    proc, out = sessions("dry")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in SECTIONS:
        assert result(out, name)["status"] == "ok", (out / f"{name}.log").read_text()[-3000:]
        assert (out / f"{name}.log").exists()
    sdxl = result(out, "sdxl")["rows"][0]
    assert sdxl["rc"] == 0 and sdxl["s_per_step"] > 0 and sdxl["estimate_gb"] > 0
    danlu = result(out, "sdscripts")["rows"][0]
    assert danlu["trainer"] == "danlu" and danlu["rc"] == 0 and danlu["timed_steps"] >= 1 and danlu["s_per_step"] > 0
    ran = [r for r in result(out, "switches")["rows"] if "skipped" not in r]
    assert [r["setting"] for r in ran] == ["baseline bf16+sdpa", "tf32+cudnn+fused"] and all(r["rc"] == 0 for r in ran)
    flux = result(out, "flux_attention")["rows"]
    assert [(r["sdpa"], r["finite_grads"]) for r in flux if "skipped" not in r] == [("auto", True), ("flash", True)]
    assert len(list(out.iterdir())) <= 8  # a device call returns at most 8 files


def test_a_failing_and_a_hanging_section_leave_the_next_one_running(sessions):
    proc, out = sessions("faults")
    assert proc.returncode == 1
    assert result(out, "sdxl")["status"].startswith("failed")
    assert "injected failure of section sdxl" in (out / "sdxl.log").read_text()
    assert result(out, "switches")["status"].startswith("timed out after 4 s")
    assert result(out, "flux_attention")["status"] == "ok"
    assert [r["finite_grads"] for r in result(out, "flux_attention")["rows"] if "skipped" not in r] == [True, True]
    assert "== switches: timed out" in proc.stdout


def test_without_cuda_and_without_the_dry_run_flag_it_refuses(tmp_path, monkeypatch, capsys):
    import torch

    sys.path.insert(0, str(ROOT))
    from bench import gpu_session

    monkeypatch.delenv("DANLU_GPU_DRYRUN", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also checked on a machine with a GPU
    assert gpu_session.main(["--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")]) == 2
    assert "DANLU_GPU_DRYRUN=1" in capsys.readouterr().err
    assert not list((tmp_path / "out").iterdir())  # nothing measured, nothing half-written


def test_step_clock_stamps_another_scripts_optimizer_steps_even_when_it_crashes(tmp_path):
    """The wrapper sd-scripts runs under: every optimizer step stamped, the file written also after a crash."""
    script = tmp_path / "trainer.py"
    script.write_text("import sys, torch\n"
                      "w = torch.nn.Parameter(torch.ones(2))\n"
                      "opt = torch.optim.AdamW([w])\n"
                      "for _ in range(int(sys.argv[1])):\n"
                      "    w.sum().backward(); opt.step(); opt.zero_grad()\n"
                      "if sys.argv[2] == 'crash':\n"
                      "    raise RuntimeError('boom')\n")
    cases = ((3, "ok", 0), (2, "crash", 1))
    procs = [subprocess.Popen([sys.executable, str(ROOT / "bench" / "step_clock.py"), str(tmp_path / f"{end}.json"),
                               str(script), str(steps), end], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for steps, end, _ in cases]  # side by side: each mostly imports torch
    for (steps, end, rc), proc in zip(cases, procs, strict=True):
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == rc, stderr
        got = json.loads((tmp_path / f"{end}.json").read_text())
        assert got["rc"] == rc and len(got["stamps"]) == steps and got["stamps"] == sorted(got["stamps"])


def test_a_section_whose_runs_fail_is_not_reported_ok(tmp_path, monkeypatch):
    """An engine run that fails is a row with rc/error, not an exception: the section must still not read "ok"."""
    sys.path.insert(0, str(ROOT))
    from bench import gpu_sections, gpu_session

    monkeypatch.setitem(gpu_sections.SECTIONS, "sdxl", lambda rows, work, size: (
        rows.add(setting="a", rc=0), rows.add(setting="b", rc=1, error="could not load the model")))
    monkeypatch.delenv("DANLU_GPU_SESSION_FAULT", raising=False)
    rc = gpu_session.run_section("sdxl", tmp_path, tmp_path, "dry")
    assert gpu_session.status_of(rc, "sdxl").startswith("rows failed")
    assert [r["setting"] for r in result(tmp_path, "sdxl")["rows"]] == ["a", "b"]
    assert gpu_session.status_of(0, "sdxl") == "ok" and gpu_session.status_of(1, "sdxl").startswith("failed")
