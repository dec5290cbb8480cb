"""The Runs tab deletes a run that ended, after a second press: the first says what goes and how much."""

from __future__ import annotations

import pytest

from tests.fake_runs import finished_run
from tests.ui_press import press, text_of
from ui.app import build_app


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    ws = tmp_path_factory.mktemp("delete") / "ws"
    demo = build_app(ws)
    return demo, ws


def test_delete_asks_once_then_removes_the_run(world):
    demo, ws = world
    run = "20260101-100000-000-old"
    finished_run(ws / "runs", run, "old", with_file=True)
    shown = text_of(press(demo, "runs-delete", values={"runs-select": run}, state=None))
    assert run in shown and "again" in shown and (ws / "runs" / run).is_dir(), shown
    shown = text_of(press(demo, "runs-delete", values={"runs-select": run}, state=run))
    assert f"Deleted {run}" in shown and not (ws / "runs" / run).exists(), shown


def test_nothing_picked_or_a_stale_pick_deletes_nothing(world):
    demo, ws = world
    run = "20260101-110000-000-kept"
    finished_run(ws / "runs", run, "kept")
    assert "Pick a run" in text_of(press(demo, "runs-delete", values={"runs-select": None}, state=None))
    # armed for another run: this press only asks
    shown = text_of(press(demo, "runs-delete", values={"runs-select": run}, state="20260101-100000-000-other"))
    assert "again" in shown and (ws / "runs" / run).is_dir()


def test_picking_another_run_withdraws_the_question(world):
    demo, ws = world
    asked = "20260101-120000-000-asked"
    shown = press(demo, "runs-select", event="change", values={"runs-select": "20260101-110000-000-kept"},
                  state=asked)
    assert "Delete this run…" in shown and "" in shown, shown  # the button is back, the question gone
    same = press(demo, "runs-select", event="change", values={"runs-select": asked}, state=asked)
    assert "Delete this run…" not in same, same  # still the run asked about: nothing changes
