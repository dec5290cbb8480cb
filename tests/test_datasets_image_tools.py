"""Image tools change files on disk, keep byte-exact backups in the workspace, and undo restores them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dataset_helpers import tree_digests
from PIL import Image

from trainer.data.buckets import assign_bucket, make_buckets
from trainer.datasets import backups
from trainer.datasets.edits import apply, preview, undo_last
from trainer.datasets.image_tools import Options, crop_box, safe_stem


@pytest.fixture
def dataset(tmp_path) -> Path:
    folder = tmp_path / "ws" / "datasets" / "d" / "5_c"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (300, 600, 3), dtype=np.uint8)).save(folder / "wide.png")
    (folder / "wide.txt").write_text("wide, tag")
    Image.new("CMYK", (100, 100), (0, 255, 0, 0)).save(folder / "cmyk.jpg")
    rgba = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    rgba.save(folder / "alpha.png")
    frames = [Image.new("P", (40, 40), i) for i in (3, 9)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    (folder / "anim.txt").write_text("gif caption")
    Image.fromarray(np.full((64, 64), 40000, dtype=np.uint16)).save(folder / "deep.png")
    tall = Image.new("RGB", (60, 30), (0, 0, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° when shown
    tall.save(folder / "rot.jpg", exif=exif)
    (folder / "Bild ä (1).png").write_bytes((folder / "alpha.png").read_bytes())
    (folder / "Bild ä (1).txt").write_text("umlaut")
    return folder.parent


def test_crop_box_keeps_focus_inside_borders():
    assert crop_box((600, 300), (1, 1), (0.5, 0.5)) == (150, 0, 450, 300)
    assert crop_box((600, 300), (1, 1), (0.0, 0.5)) == (0, 0, 300, 300)
    assert crop_box((600, 300), (1, 1), (0.9, 0.5)) == (300, 0, 600, 300)
    assert crop_box((300, 600), (2, 3), (0.5, 0.5)) == (0, 75, 300, 525)


def test_crop_writes_file_backs_up_and_undo_restores_exact_bytes(dataset):
    ws = dataset.parent.parent
    before = tree_digests(dataset)
    shown = preview(dataset, "crop_aspect", Options(aspect=(1, 1), focus=(0.0, 0.5)))
    assert [c.path.name for c in shown.changed] == ["rot.jpg", "wide.png"], "only non-square images need a crop"
    assert tree_digests(dataset) == before, "preview writes nothing"
    out = apply(ws, dataset, "crop_aspect", Options(aspect=(1, 1), focus=(0.0, 0.5)))
    with Image.open(dataset / "5_c" / "wide.png") as img:
        assert img.size == (300, 300)
        left = np.asarray(img)
    backup = out.edit.folder / "files" / "5_c" / "wide.png"
    assert tree_digests(backup.parent)["wide.png"] == before["5_c/wide.png"]
    with Image.open(backup) as orig:
        assert np.array_equal(np.asarray(orig)[:, :300], left), "focus at the left edge keeps the left part"
    assert undo_last(ws, dataset) is not None
    assert tree_digests(dataset) == before


def test_convert_makes_rgb_and_gif_becomes_png_with_caption_kept(dataset):
    ws = dataset.parent.parent
    before = tree_digests(dataset)
    out = apply(ws, dataset, "convert")
    names = {c.path.name for c in out.changed}
    assert {"cmyk.jpg", "alpha.png", "anim.gif", "deep.png"} <= names and "wide.png" not in names
    folder = dataset / "5_c"
    assert not (folder / "anim.gif").exists()
    with Image.open(folder / "anim.png") as img:
        first_frame = Image.new("P", (1, 1), 3).convert("RGB").getpixel((0, 0))
        assert img.mode == "RGB" and img.getpixel((0, 0)) == first_frame
    with Image.open(folder / "alpha.png") as img:
        assert img.mode == "RGB" and img.getpixel((0, 0)) == (255, 255, 255), "transparent becomes white"
    with Image.open(folder / "deep.png") as img:
        assert img.mode == "RGB" and img.getpixel((0, 0))[0] == round(40000 / 257), "16-bit scaled, not clipped"
    assert (folder / "anim.txt").read_text() == "gif caption"
    undo_last(ws, dataset)
    assert tree_digests(dataset) == before


def test_exif_rotation_is_applied_in_place(dataset):
    ws = dataset.parent.parent
    apply(ws, dataset, "exif")
    with Image.open(dataset / "5_c" / "rot.jpg") as img:
        assert img.size == (30, 60) and img.getexif().get(0x0112, 1) == 1
    assert preview(dataset, "exif").changed == [], "nothing left to fix"


def test_downscale_only_touches_oversized(dataset):
    out = apply(dataset.parent.parent, dataset, "downscale", Options(max_side=200))
    assert {c.path.name for c in out.changed} == {"wide.png"}
    with Image.open(dataset / "5_c" / "wide.png") as img:
        assert img.size == (200, 100)


def test_rename_to_safe_names_moves_captions_and_undo_moves_back(dataset):
    ws = dataset.parent.parent
    before = tree_digests(dataset)
    apply(ws, dataset, "rename")
    folder = dataset / "5_c"
    assert (folder / "Bild_a_1.png").is_file() and (folder / "Bild_a_1.txt").read_text() == "umlaut"
    assert not (folder / "Bild ä (1).png").exists()
    undo_last(ws, dataset)
    assert tree_digests(dataset) == before


def test_crop_to_bucket_uses_the_trainer_bucket(dataset):
    out = preview(dataset, "crop_bucket", Options(resolution=(512, 512)))
    wide = next(c for c in out.changed if c.path.name == "wide.png")
    bucket = assign_bucket((600, 300), make_buckets((512, 512), 256, 1024, 64))  # the trainer's choice
    assert f"bucket {bucket[0]}x{bucket[1]}" in wide.detail
    w, h = wide.image.size
    assert (w == 600 or h == 300) and abs(w / h - bucket[0] / bucket[1]) < 0.01


def test_undo_twice_is_refused_and_history_lists_edits(dataset):
    ws = dataset.parent.parent
    apply(ws, dataset, "downscale", Options(max_side=200))
    edit = undo_last(ws, dataset)
    with pytest.raises(ValueError, match="already undone"):
        backups.undo(edit)
    assert [e.tool for e in backups.history(ws, dataset)] == ["downscale"]


def test_safe_stem():
    assert safe_stem("Bild ä (1)") == "Bild_a_1"
    assert safe_stem("图片") == "image"


def test_avif_converts_and_unreadable_heic_names_the_fix(dataset):
    folder = dataset / "5_c"
    Image.new("RGB", (32, 32), (0, 90, 200)).save(folder / "photo.avif")
    (folder / "phone.heic").write_bytes(b"not decodable without a plugin")
    out = preview(dataset, "convert")
    avif = next(c for c in out.changed if c.path.name == "photo.avif")
    assert avif.new_path.name == "photo.png"
    try:
        import pillow_heif  # noqa: F401
    except ImportError:
        assert any("phone.heic" in f and "pillow-heif" in why for f, why in out.failed)
