"""Novice names the LoRA after the dataset it trains (mychar.safetensors), not danlu-lora.safetensors for every run,
which collide in the WebUIs' LoRA folders; a name the user typed is theirs and stays."""

from __future__ import annotations

import gradio as gr
import pytest

from tests.ui_press import press
from ui.app import build_app
from ui.tabs import novice


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_app(tmp_path_factory.mktemp("names") / "ws")


def test_the_output_name_follows_the_dataset(demo):
    shown = press(demo, "novice-dataset-train_data_dir", "change",
                  values={"novice-dataset-train_data_dir": "/data/my char 2", "novice-save-output_name": "danlu-lora"},
                  state="danlu-lora")
    assert "my-char-2" in shown, shown


def test_a_typed_name_stays(demo):
    # through the page's event (which the test above shows is wired) ...
    shown = press(demo, "novice-dataset-train_data_dir", "change",
                  values={"novice-dataset-train_data_dir": "/data/mychar", "novice-save-output_name": "my-own"},
                  state="danlu-lora")
    assert "mychar" not in shown, shown
    # ... and in the handler itself, which leaves both the field and the name it gave as they are
    assert novice._follow_dataset("/data/mychar", "my-own", "danlu-lora") == (gr.skip(), gr.skip())
    assert novice._follow_dataset("/data/mychar", "danlu-lora", "danlu-lora") == ("mychar", "mychar")
