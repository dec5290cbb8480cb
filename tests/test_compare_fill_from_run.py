"""Compare tab: ticking a run's LoRA fills the prompts, negative prompt and base model with that run's own, but
never replaces what the user typed or picked."""

from __future__ import annotations

import gradio as gr

from trainer.config import config_from_dict, save_config
from ui.tabs.compare import PLACEHOLDER_PROMPT, fill_from_run


def run_lora(tmp_path, name: str, settings: dict) -> str:
    run = tmp_path / "runs" / f"20260101-100000-000-{name}"
    save_config(config_from_dict(settings), run / "config.toml")
    lora = run / "output" / f"{name}.safetensors"
    lora.parent.mkdir(parents=True)
    lora.write_bytes(b"x")
    return str(lora)


SETTINGS = {"model": {"base_model": "/models/anime-v3"},
            "sampling": {"sample_prompts": "zk, red circle\nzk, blue square --d 7", "sample_negative_prompt": "blurry"},
            "caption": {"trigger_word": "zk"}}


def test_an_untouched_form_takes_the_runs_prompts_negative_and_base(tmp_path):
    lora = run_lora(tmp_path, "a", SETTINGS)
    got = fill_from_run([lora], PLACEHOLDER_PROMPT, "", "/models/sd15", "/models/sd15")
    assert got == ("zk, red circle\nzk, blue square --d 7", "blurry", "/models/anime-v3")


def test_what_the_user_typed_or_picked_stays(tmp_path):
    lora = run_lora(tmp_path, "a", SETTINGS)
    got = fill_from_run([lora], "my own prompt", "lowres", "/models/picked", "/models/sd15")
    assert got == (gr.skip(),) * 3, got


def test_a_run_without_sample_prompts_gives_its_trigger_word(tmp_path):
    lora = run_lora(tmp_path, "b", {"caption": {"trigger_word": "mychar"}})
    prompts, negative, base = fill_from_run([lora], "", "", None, None)
    assert prompts == "mychar" and negative == gr.skip() and base == gr.skip()  # no base in that run's settings


def test_files_from_outside_a_run_change_nothing(tmp_path):
    loose = tmp_path / "outputs" / "x.safetensors"
    loose.parent.mkdir(parents=True)
    loose.write_bytes(b"x")
    assert fill_from_run([str(loose)], PLACEHOLDER_PROMPT, "", None, None) == (gr.skip(),) * 3
    assert fill_from_run([], PLACEHOLDER_PROMPT, "", None, None) == (gr.skip(),) * 3
