"""What Start says (issue 10.12): "Started" when the run starts at once, "Queued" with its place otherwise; the
empty monitor names the button as it is labelled."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_ui_runs_manager import DOUBLE, drain
from trainer.config import config_from_dict
from ui.context import AppContext
from ui.forms.launch import enqueue
from ui.i18n import translate
from ui.runs.manager import RunManager
from ui.runs.view import progress_html


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
def test_the_empty_monitor_names_the_start_button_as_labelled(lang):
    t = lambda key, **fmt: translate(key, lang, **fmt)  # noqa: E731
    assert translate("novice.start", lang) in progress_html(t, None, None)
