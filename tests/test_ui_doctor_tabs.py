"""The dataset doctor on the Dreambooth and Flux tabs judges the folder with the run's own settings (the chosen
preset's batch size here), as on Novice and Expert."""

from __future__ import annotations

import pytest

from tests.engine_helpers import make_dataset
from tests.test_ui_markdown_escape import shown
from ui.app import build_app


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_app(tmp_path_factory.mktemp("doctor") / "ws")


@pytest.mark.parametrize(("tab", "preset"), [("dreambooth", "dreambooth-sd15-16gb"), ("flux", "memory-flux-24gb")])
def test_the_doctor_uses_the_tabs_settings(demo, tab, preset, tmp_path):
    data = make_dataset(tmp_path / "data", n=4)  # 4 images x 5 repeats
    blocks = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    button = blocks.get(f"{tab}-doctor-run")
    assert button is not None, f"no dataset doctor on the {tab} tab"
    run = next(fn for fn in demo.fns.values() if (button._id, "click") in fn.targets)
    values = {c: c.value for c in run.inputs}
    values[blocks[f"{tab}-preset"]] = preset  # batch 2 (the doctor alone would assume 1)
    values[blocks[f"{tab}-dataset-train_data_dir"]] = str(data)
    values[blocks[f"{tab}-dataset-resolution"]] = "64,64"
    report = run.fn(values)
    assert "Steps per epoch (batch 2): 10" in shown(report), report
