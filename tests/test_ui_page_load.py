"""What a page load asks the server. The browser redraws the loading state of every component on the page for each
event it runs, so each load event costs a page of ~1,200 components real time: every workspace picker (datasets and
models, ten on the page) is re-listed by one event, not one each."""

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
