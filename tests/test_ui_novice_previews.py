"""Novice runs make preview images of the user's own subject. Before, a Novice run on a real model made no previews
at all (the novice presets had no prompts), and on the demo model it drew the demo's 'demo, red circle' whatever
the dataset was. Now the previews are two captions of the dataset (its first and last image) as the run trains
them, trigger word first, every two epochs, and the plan says so before Start."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.ui_press import press, text_of
from trainer.data.captions import preview_prompts
from ui.app import build_app
from ui.tabs import novice


def test_preview_prompts_are_two_captions_with_the_trigger_first():
    assert preview_prompts(["red cat, sitting", "zk, blue dog"], "zk") == "zk, red cat, sitting\nzk, blue dog"
    assert preview_prompts(["red cat", "red cat"], "") == "red cat"  # one image, or the same caption twice
    assert preview_prompts(["red cat", ""], "zk") == "zk, red cat\nzk"  # an image captioned by nothing


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    base = tmp_path_factory.mktemp("previews")
    data = base / "mine" / "10_cat"
    data.mkdir(parents=True)
    for name, caption in (("a", "red cat, sitting"), ("b", "zk, cat, running"), ("c", "cat on a roof")):
        Image.new("RGB", (64, 64), "red").save(data / f"{name}.png")
        (data / f"{name}.txt").write_text(caption, encoding="utf-8")
    return build_app(base / "ws"), base / "mine"


@pytest.mark.parametrize("model, every", [("demo", "every epoch"), ("hub", "every 2 epochs")])
def test_a_novice_run_previews_the_users_captions(app, model, every, monkeypatch):
    demo, dataset = app
    queued = []
    monkeypatch.setattr(novice, "queue_checked", lambda ctx, cfg, w, bad: queued.append(cfg) or {w["msg"]: "queued"})
    values = {"novice-dataset-train_data_dir": str(dataset), "novice-caption-trigger_word": "zk"}
    if model == "hub":
        values["novice-custom-model"] = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    press(demo, "novice-start", values=values)
    (cfg,) = queued
    assert cfg.sampling.sample_prompts == "zk, red cat, sitting\nzk, cat on a roof"
    assert cfg.sampling.sample_every_n_epochs == (1 if model == "demo" else 2)  # the demo trains 2 epochs
    plan = text_of(press(demo, "novice-caption-trigger_word", "change", values=values))
    assert f"Preview images {every}: “zk, red cat, sitting” · “zk, cat on a roof”" in plan, plan
