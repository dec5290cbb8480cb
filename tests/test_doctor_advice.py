"""The doctor's measured advice: images per concept, image size against the training resolution, variety."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from test_doctor_check import blocks

from trainer.doctor import check_dataset, render_text
from trainer.doctor.check import TOO_FEW, USEFUL_MINIMUM

ROOT = Path(__file__).resolve().parent.parent


def concept(root: Path, name: str, n: int, size=(512, 512), sizes=None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for i in range(n):
        blocks(100 + i, sizes[i % len(sizes)] if sizes else size).save(folder / f"{i:03d}.png")
        (folder / f"{i:03d}.txt").write_text("zk", encoding="utf-8")
    return root


def codes(report) -> list[str]:
    return sorted(f.code for f in report.findings)


def test_three_image_concept_warns_with_what_to_do(tmp_path):
    report = check_dataset(concept(tmp_path / "d", "10_zk", 3))
    (f,) = report.by_code("too_few_images")
    assert f.level == "warning" and f.data["count"] == 3 and f.files == ("10_zk",)
    assert "only 3 image(s)" in f.en and "3 张图片" in f.zh
    assert str(USEFUL_MINIMUM) in f.fix_en and "20-30" in f.fix_zh
    assert "too_few_images" in render_text(report, "zh")


def test_between_the_limits_is_a_note_and_enough_is_silent(tmp_path):
    report = check_dataset(concept(tmp_path / "a", "5_zk", TOO_FEW))
    assert [f.level for f in report.by_code("few_images")] == ["info"] and not report.by_code("too_few_images")
    varied = [(512, 512), (512, 768), (768, 512)]
    report = check_dataset(concept(tmp_path / "b", "5_zk", USEFUL_MINIMUM, sizes=varied))
    assert codes(report) == [], "20 varied, large images: nothing to say"


def test_one_concept_judged_on_its_own(tmp_path):
    root = concept(tmp_path / "d", "10_big", USEFUL_MINIMUM, sizes=[(512, 512), (512, 768)])
    concept(root, "10_tiny", 2)
    (f,) = check_dataset(root).by_code("too_few_images")
    assert f.data["name"] == "tiny"


def test_mostly_small_images_warn_once_with_a_lower_resolution(tmp_path):
    root = concept(tmp_path / "d", "1_zk", USEFUL_MINIMUM, sizes=[(256, 256), (256, 384), (384, 256)])
    report = check_dataset(root, resolution=(512, 512))
    (f,) = report.by_code("mostly_small")
    assert f.data["small"] == USEFUL_MINIMUM and f.data["lower"] == "256,256"
    assert not check_dataset(root, resolution=(256, 256)).by_code("mostly_small")


def test_one_aspect_ratio_is_a_note(tmp_path):
    report = check_dataset(concept(tmp_path / "d", "1_zk", USEFUL_MINIMUM))
    (f,) = report.by_code("one_aspect")
    assert f.level == "info" and (f.data["bw"], f.data["bh"]) == (512, 512)


def test_transparent_pictures_are_named_once_with_alpha_mask(tmp_path):
    """A cut-out character on a transparent background trains on white unless dataset.alpha_mask is on: the
    doctor names those pictures. A PNG with an alpha channel that is opaque everywhere is not one of them."""
    root = concept(tmp_path / "d", "10_zk", 3)
    sub = root / "10_zk"
    cut = blocks(7).convert("RGBA")
    cut.putalpha(Image.new("L", (256, 512), 255).crop((0, 0, 512, 512)))  # left half opaque, right transparent
    cut.save(sub / "cut.png")
    blocks(9).convert("RGBA").save(sub / "opaque_rgba.png")  # alpha 255 everywhere
    report = check_dataset(root)
    (f,) = report.by_code("transparent")
    assert f.level == "info" and [Path(p).name for p in f.files] == ["cut.png"]
    assert "alpha_mask" in f.fix_en and "alpha_mask" in f.fix_zh and "1" in f.en
    assert not check_dataset(concept(tmp_path / "plain", "10_zk", 3)).by_code("transparent")
