"""What Start says (issue 10.12): "Started" when the run starts at once, "Queued" with its place otherwise; the
empty monitor names the button as it is labelled."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_ui_runs_manager import DOUBLE, drain
from trainer.config import config_from_dict
from ui.context import AppContext
from ui.forms.launch import enqueue
from ui.runs.manager import RunManager


@pytest.fixture
def ctx(tmp_path: Path):
    c = AppContext(workspace=tmp_path)
    c.shared["runs"] = RunManager(tmp_path / "runs", engine=DOUBLE)
    yield c
    drain(c.shared["runs"])


def test_a_run_that_starts_at_once_says_started_and_the_next_says_queued(ctx):
    cfg = config_from_dict({"save": {"output_name": "slow-one"}})
    first, msg = enqueue(ctx, cfg, "slow-one")
    assert "Started run" in msg and first in msg and "Queued" not in msg
    assert ctx.shared["runs"].current() == first
    second, msg = enqueue(ctx, cfg, "slow-two")
    assert "Queued run" in msg and second in msg and "1" in msg


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_each_empty_monitor_names_its_own_tabs_start_button(tmp_path, lang):
    """Dreambooth's button is "Start Dreambooth training", Flux's "Start Flux training": each tab's empty panel
    names its own; the Runs tab, which has none, names the tabs that start runs."""
    from ui.app import build_app

    demo = build_app(tmp_path / "ws", lang=lang)
    blocks = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    starts = {tab: blocks[f"{tab}-start"].value for tab in ("novice", "expert", "dreambooth", "flux")}
    assert len(set(starts.values())) >= 3, starts  # the labels differ, so naming the wrong one shows
    for tab, label in starts.items():
        empty = blocks[f"{tab}-run-progress"].value
        assert f"“{label}”" in empty, (tab, empty)
        assert not any(f"“{other}”" in empty for other in set(starts.values()) - {label}), (tab, empty)
    assert "Dreambooth" in blocks["runs-progress"].value and "Flux" in blocks["runs-progress"].value
