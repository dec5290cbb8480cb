"""Workspace lists under the path fields that take them (schema `picks`): each tab that shows such a field shows,
in the field's own box, the list of the workspace's models or datasets, and picking an entry fills that field."""

from __future__ import annotations

import gradio as gr
import pytest

from trainer.config.schema import all_params
from ui.app import build_app
from ui.components.dataset_picker import MODEL_PICKERS, PICKERS
from ui.forms.build import shown_params
from ui.tabs import dreambooth, flux, novice

PICKING = [p for p in all_params() if p.picks]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    ws = tmp_path_factory.mktemp("pickers") / "ws"
    (ws / "datasets" / "shapes" / "2_shape").mkdir(parents=True)
    (ws / "models").mkdir(parents=True)
    (ws / "models" / "civ77.safetensors").write_bytes(b"")
    return build_app(ws)


def by_id(demo) -> dict[str, gr.components.Component]:
    return {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}


def box_of(block):
    """The column holding a component (Gradio puts runs of form components in Form blocks of their own)."""
    while not isinstance(block, gr.Column):
        block = block.parent
    return block


@pytest.mark.parametrize(("tab", "field_prefix", "paths"), [
    ("expert", "field", [p.path for p in shown_params() if p.picks]),
    ("dreambooth", "dreambooth", [p for p in dreambooth.FIELDS if p in {q.path for q in PICKING}]),
    ("flux", "flux", [p for p in flux.FIELDS if p in {q.path for q in PICKING}]),
    ("novice", "novice", [p for p in novice.FIELDS if p in {q.path for q in PICKING}]),
])
def test_each_path_field_has_its_workspace_list_in_its_box(demo, tab, field_prefix, paths):
    assert paths, "the schema marks path fields to pick"
    blocks, shared = by_id(demo), demo.danlu_ctx.shared
    for path in paths:
        p = next(q for q in PICKING if q.path == path)
        field = blocks[f"{field_prefix}-{p.group}-{p.name}"]
        picker = blocks.get(f"{tab}-{p.name}-picker")
        assert isinstance(picker, gr.Dropdown), f"{tab}: no workspace list for {path}"
        assert box_of(picker) is box_of(field), f"{tab}: the list for {path} is not in the field's box"
        registry, entry = (PICKERS, "shapes") if p.picks == "datasets" else (MODEL_PICKERS, "civ77.safetensors")
        assert picker in shared[registry], path  # re-listed on page load and after an upload or a download
        assert entry in [label for label, _ in picker.choices], (path, picker.choices)
        fills = [fn for fn in demo.fns.values()
                 if (picker._id, "input") in fn.targets]
        assert len(fills) == 1 and [o._id for o in fills[0].outputs] == [field._id], path
        assert fills[0].fn("/ws/datasets/shapes") == "/ws/datasets/shapes"
