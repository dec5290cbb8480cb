"""A Dreambooth run saves a base-model checkpoint, which A1111, Forge and ComfyUI list among their models: its
default file name must not call it a LoRA (every Dreambooth preset, and so the tab, said 'danlu-lora')."""

from __future__ import annotations

from tests.ui_press import by_elem_id
from trainer.config.presets import apply_presets, list_presets
from ui.app import build_app


def test_every_dreambooth_preset_names_its_checkpoint_as_one():
    names = {p.name: apply_presets([p.name]).save.output_name for p in list_presets("dreambooth")}
    assert names and set(names.values()) == {"danlu-dreambooth"}, names


def test_the_dreambooth_tab_starts_with_that_name(tmp_path):
    assert by_elem_id(build_app(tmp_path / "ws"), "dreambooth-save-output_name").value == "danlu-dreambooth"
