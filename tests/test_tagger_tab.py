"""WD Tagger tab handlers in process: what the Status box and the preview show a user (the browser test,
test_tagger_ui.py, covers the clicks)."""

from __future__ import annotations

from PIL import Image

from trainer.tagger import TagOptions, load_model, tag_image
from trainer.tagger.tiny import build_tiny_tagger
from ui.context import AppContext
from ui.tabs import tagger


def values(model, folder, preview="") -> dict:
    return {"model": "wd-vit-tagger-v3", "local": str(model), "provider": "cpu", "folder": str(folder),
            "recursive": False, "extension": ".txt", "general_t": 0.35, "character_t": 0.85, "general_mcut": False,
            "character_mcut": False, "rating": False, "underscores": True, "escape": False, "character_first": True,
            "first": "", "undesired": "", "replace": "", "existing": "skip", "backup": True, "batch": 1,
            "preview_path": preview}


def _pictures(folder):
    folder.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (32, 32), (90 * i, 0, 0)).save(folder / f"pic_{i}.png")
    return folder


def test_errors_read_as_written_in_the_plain_status_box(tmp_path):
    """Status is a Textbox, not Markdown: a Markdown-escaped error showed 'wd\\-vit\\-tagger\\-v3', 'HF\\_ENDPOINT'
    and '\\(--model\\-dir\\)' to the user."""
    missing = tmp_path / "my_tagger-model"
    pics = _pictures(tmp_path / "10_my_pics")
    *_, (_bar, status, _provider) = tagger._run(AppContext(workspace=tmp_path / "ws"), values(missing, pics))
    assert status.startswith("Error: ") and str(missing) in status, status
    assert "\\" not in status, status


def test_preview_without_an_image_previews_the_folders_first_one(tmp_path):
    """A remote user does not know the server's file names: an empty 'Image to preview' takes the folder's first
    image (of a training folder's <repeats>_<name> sub-folders too), shows it, and names it in the field."""
    build_tiny_tagger(tmp_path / "model", size=32)
    pics = _pictures(tmp_path / "data" / "10_mine")
    *_, last = tagger._preview(AppContext(workspace=tmp_path / "ws"), values(tmp_path / "model", pics.parent))
    label, caption, _provider, status, path, picture = last
    first = pics / "pic_0.png"
    assert status == "" and path == str(first) and picture == str(first)
    assert caption == ", ".join(tag_image(load_model(tmp_path / "model"), first, TagOptions())[1])


def test_preview_of_an_empty_folder_says_what_is_missing(tmp_path):
    (tmp_path / "empty").mkdir()
    *_, last = tagger._preview(AppContext(workspace=tmp_path / "ws"), values(tmp_path / "model", tmp_path / "empty"))
    assert "no images in" in last[3] and str(tmp_path / "empty") in last[3], last
