"""Which saved state a run panel offers to continue from, read in the app's process without the engine."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT
from trainer.run_outputs import latest_state


def test_the_furthest_readable_state_is_offered(tmp_path):
    for name, progress in {"a-000001-state": '{"global_step": 30}', "a-state": '{"global_step": 47}',
                           "b-state": "{half written", "c-state": '{"epoch": 1}'}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "progress.json").write_text(progress)
    (tmp_path / "d-state").mkdir()  # no progress.json at all
    assert latest_state(tmp_path, "a", since=0) == (tmp_path / "a-state", 47)
    assert latest_state(tmp_path / "missing", "a", since=0) is None


def test_only_the_runs_own_states_are_offered(tmp_path):
    """A save.output_dir shared by several runs: another output_name's state, or one an earlier run of the same
    name left (written before this run began), is not this run's to continue from."""
    import os

    for name, step in {"mine-000001-state": 30, "mine-step00000040-state": 40, "other-state": 90,
                       "mine-000003-state": 88, "mine-extra-state": 99}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "progress.json").write_text(f'{{"global_step": {step}}}')
    os.utime(tmp_path / "mine-000003-state" / "progress.json", (1000, 1000))  # an earlier run's, long before this one started
    assert latest_state(tmp_path, "mine", since=2000) == (tmp_path / "mine-step00000040-state", 40)


def test_the_run_panels_resume_lookup_does_not_load_the_engine():
    """It runs in the app on every poll of an ended run: importing torch there once cost 5 s, enough to hold
    the Runs tab's first lists past their deadline."""
    code = ("import sys, ui.runs.view as v, trainer.run_outputs; from pathlib import Path; "
            "v.continuation(Path('.'), None); "
            "print([m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]


def test_a_run_that_was_continued_offers_it_no_more(tmp_path):
    """Once Continue queued a run from a stopped run's state, the stopped run's panel stopped offering it (a second
    press made a second continuation of the same state)."""
    from fake_runs import stopped_run

    from trainer.config import config_from_dict, save_config
    from trainer.events import RunSummary
    from ui.runs.view import continuation

    runs = tmp_path / "runs"
    state = stopped_run(runs, "20260101-100000-000-half", "half", tmp_path / "m", tmp_path / "d", step=7)
    summary = RunSummary()
    summary.status = "stopped"
    assert continuation(runs / "20260101-100000-000-half", summary)[1] == 7
    save_config(config_from_dict({"save": {"output_name": "other"}}), runs / "20260101-100100-000-other" / "config.toml")
    assert continuation(runs / "20260101-100000-000-half", summary) is not None  # a later run, not from this state
    save_config(config_from_dict({"save": {"output_name": "half", "resume": str(state)}}),
                runs / "20260101-100200-000-half" / "config.toml")
    assert continuation(runs / "20260101-100000-000-half", summary) is None
