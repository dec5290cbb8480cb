"""Every training tab's Start: the button is disabled while it works (a double click queues one run), and an
unexpected failure shows in the tab's message and gives the button back (Expert's stayed disabled until a reload)."""

from __future__ import annotations

import inspect

import pytest

from ui.app import build_app

# The function each tab's Start calls to check and queue the run.
QUEUES = {"novice": "_start_run", "expert": "_start", "dreambooth": "_start_run", "flux": "_start"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_app(tmp_path_factory.mktemp("start") / "ws")


@pytest.mark.parametrize("tab", sorted(QUEUES))
def test_start_disables_itself_and_recovers_from_a_failure(demo, tab, monkeypatch):
    import importlib

    module = importlib.import_module(f"ui.tabs.{tab}")

    def broken(*_):
        raise RuntimeError("disk <full> *now*")

    monkeypatch.setattr(module, QUEUES[tab], broken)
    blocks = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    start, msg = blocks[f"{tab}-start"], blocks[f"{tab}-msg"]
    click = next(fn for fn in demo.fns.values() if (start._id, "click") in fn.targets)
    assert start in click.outputs and msg in click.outputs
    steps = click.fn({c: c.value for c in click.inputs})
    assert inspect.isgenerator(steps), f"{tab}: Start is not disabled while it works"
    first = next(steps)
    assert first[start]["interactive"] is False
    *_, last = steps
    assert last[start]["interactive"] is True, f"{tab}: the button stays disabled after a failure"
    assert "disk \\<full\\> \\*now\\*" in last[msg], last[msg]  # the error, escaped for Markdown
