"""What a page load asks the server. The browser redraws the loading state of every component on the page for each
event it runs, so each load event costs a page of ~1,200 components real time: every workspace picker (datasets and
models, about twenty on the page) is re-listed by one event, not one each."""

from __future__ import annotations

from ui.app import build_app
from ui.components.dataset_picker import MODEL_PICKERS, PICKERS


def test_one_page_load_event_lists_every_picker_with_what_is_on_disk_now(tmp_path):
    ws = tmp_path / "ws"
    demo = build_app(ws)
    pickers = demo.danlu_ctx.shared[PICKERS] + demo.danlu_ctx.shared[MODEL_PICKERS]
    assert len(pickers) >= 10
    on_load = [fn for fn in demo.fns.values() if any(event == "load" for _, event in fn.targets)]
    filling = [fn for fn in on_load if {p._id for p in pickers} & {o._id for o in fn.outputs}]
    assert len(filling) == 1, [fn.name for fn in filling]
    assert {o._id for o in filling[0].outputs} == {p._id for p in pickers}

    (ws / "datasets" / "shapes" / "2_shape").mkdir(parents=True)  # arrived after the page was built
    (ws / "models" / "civ77.safetensors").write_bytes(b"")
    updates = dict(zip((o._id for o in filling[0].outputs), filling[0].fn(), strict=True))
    for picker in demo.danlu_ctx.shared[PICKERS]:
        assert [label for label, _ in updates[picker._id]["choices"]] == ["shapes"], picker.elem_id
        assert updates[picker._id]["value"] is None
    for picker in demo.danlu_ctx.shared[MODEL_PICKERS]:
        assert "civ77.safetensors" in [label for label, _ in updates[picker._id]["choices"]], picker.elem_id


def test_a_page_load_fills_only_the_tab_it_opens_on_and_each_other_tab_when_shown(tmp_path):
    """The Dreambooth plan, the Compare lists and the Runs lists are filled when their tab is shown (its select
    event), not by the page load, which runs the pickers' event and the plan of the Novice tab the page opens on."""
    demo = build_app(tmp_path / "ws")
    tabs = {tab.elem_id: tab._id for tab in demo.danlu_ctx.shared["tab_items"].values()}

    def events_filling(elem_id: str) -> list:
        return [fn for fn in demo.fns.values() if fn.fn and elem_id in {o.elem_id for o in fn.outputs}]

    on_load = [fn for fn in demo.fns.values() if fn.fn and any(event == "load" for _, event in fn.targets)]
    filled = {o.elem_id for fn in on_load for o in fn.outputs}
    assert len(on_load) == 2 and "novice-plan" in filled, [sorted(o.elem_id or "" for o in fn.outputs) for fn in on_load]
    for elem_id, tab in [("dreambooth-plan", "tab-dreambooth"), ("flux-plan", "tab-flux"), ("compare-loras", "tab-compare"),
                         ("runs-history", "tab-runs"), ("runs-select", "tab-runs")]:
        assert elem_id not in filled
        assert any((tabs[tab], "select") in fn.targets for fn in events_filling(elem_id)), elem_id


def test_showing_the_runs_tab_keeps_the_picked_run_and_replaces_a_removed_one(tmp_path):
    from tests.fake_runs import finished_run

    demo = build_app(tmp_path / "ws")
    runs = demo.danlu_ctx.runs_dir
    for run_id, name in [("20260101-100000-000-a", "a"), ("20260101-110000-000-b", "b")]:
        finished_run(runs, run_id, name)
    tab = demo.danlu_ctx.shared["tab_items"]["runs"]._id
    shown = next(fn for fn in demo.fns.values() if (tab, "select") in fn.targets
                 and "runs-select" in {o.elem_id for o in fn.outputs})
    at = [o.elem_id for o in shown.outputs].index("runs-select")
    assert shown.fn(None)[at]["value"] == "20260101-110000-000-b"  # none picked: the newest, as the monitor shows
    assert shown.fn("20260101-100000-000-a")[at]["value"] == "20260101-100000-000-a"  # the user's pick stays
    assert shown.fn("20250101-000000-000-gone")[at]["value"] == "20260101-110000-000-b"
