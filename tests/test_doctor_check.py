"""The dataset doctor finds each planted problem exactly, says what to do in both languages, and changes
nothing on disk."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainer.doctor import CATALOGUE, check_dataset, render_markdown, render_text

ROOT = Path(__file__).resolve().parent.parent


def blocks(seed: int, size=(512, 512)) -> Image.Image:
    """A picture of random 16x16 colour blocks: distinct seeds give clearly different perceptual hashes."""
    cells = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    return Image.fromarray(cells).resize(size, Image.NEAREST)


def make_fixture(root: Path) -> Path:
    sub = root / "10_char"
    sub.mkdir(parents=True)
    blocks(1).save(sub / "a.png")
    (sub / "a.txt").write_text("zk, red", encoding="utf-8")
    blocks(2).save(sub / "b.png")
    (sub / "b.txt").write_text("blue, square", encoding="utf-8")  # no trigger
    shutil.copyfile(sub / "b.png", sub / "b_copy.png")  # exact duplicate
    (sub / "b_copy.txt").write_text("zk, blue", encoding="utf-8")
    blocks(3).save(sub / "c.png")
    (sub / "c.txt").write_bytes("zk, 红色, 圆形".encode("gbk"))  # not UTF-8
    near = np.asarray(blocks(3), dtype=np.int16) + 6  # a slightly brighter copy: near duplicate
    Image.fromarray(np.clip(near, 0, 255).astype(np.uint8)).save(sub / "c_near.png")
    (sub / "c_near.txt").write_text("zk, near", encoding="utf-8")
    blocks(4).save(sub / "d.png")  # no caption
    blocks(5).save(sub / "e.png")
    (sub / "e.txt").write_text("  \n", encoding="utf-8")  # empty caption
    blocks(6, (128, 128)).save(sub / "small.png")  # upscaled 4x into 512x512
    (sub / "small.txt").write_text("zk", encoding="utf-8")
    blocks(7, (2048, 256)).save(sub / "wide.png")  # 8:1 into the 4:1 bucket: half cut off
    (sub / "wide.txt").write_text("zk", encoding="utf-8")
    blocks(8).save(sub / "broken.png")
    data = (sub / "broken.png").read_bytes()
    (sub / "broken.png").write_bytes(data[: len(data) // 2])  # header fine, pixels truncated
    (sub / "broken.txt").write_text("zk", encoding="utf-8")
    (sub / "junk.png").write_bytes(b"this is not an image at all")  # header unreadable
    other = root / "mychar"  # no <repeats>_ prefix
    other.mkdir()
    blocks(9).save(other / "x.png")
    return root


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file() else (b"", 0)
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_fixture(tmp_path_factory.mktemp("doctor") / "train")


@pytest.fixture(scope="module")
def report(dataset):
    return check_dataset(dataset, trigger="zk", resolution=(512, 512), batch_size=4)


def _names(files) -> tuple[str, ...]:
    return tuple(sorted(Path(f).name for f in files))


def test_each_planted_problem_is_found_exactly(report):
    found = sorted((f.code, _names(f.files)) for f in report.findings)
    assert found == sorted([
        ("caption_encoding", ("c.txt",)),
        ("cropped", ("wide.png",)),
        ("duplicate", ("b.png", "b_copy.png")),
        ("empty_caption", ("e.txt",)),
        ("few_images", ("10_char",)),
        ("missing_trigger", ("b.png", "d.png", "e.png")),
        ("near_duplicate", ("c.png", "c_near.png")),
        ("no_caption", ("d.png",)),
        ("no_prefix", ("mychar",)),
        ("unreadable", ("broken.png",)),
        ("unreadable", ("junk.png",)),
        ("upscaled", ("small.png",)),
    ])
    assert report.by_code("caption_encoding")[0].data["encoding"] == "gb18030"
    assert "gb18030" in report.by_code("caption_encoding")[0].en
    assert report.by_code("cropped")[0].data["lost"] == pytest.approx(50.0)
    assert report.by_code("upscaled")[0].data["scale"] == pytest.approx(4.0)
    assert not report.ok  # unreadable images are errors


def test_statistics(report):
    assert [(f.name, f.repeats, f.images) for f in report.folders] == [("10_char", 10, 10)]
    # 9 square images x 10 repeats in 512x512 (23 batches of 4) + wide x 10 in 1024x256 (3 batches).
    assert report.bucket_counts() == {(512, 512): 9, (1024, 256): 1}
    assert report.steps_per_epoch == 23 + 3
    assert report.tag_frequency["zk"] == 7
    assert report.tag_frequency["char"] == 2  # d (no caption) and e (empty): the folder name


def test_every_finding_says_what_to_do_in_both_languages(report):
    assert set(CATALOGUE) >= {f.code for f in report.findings}
    for f in report.findings:
        assert f.en and f.zh and f.fix_en and f.fix_zh
        assert f.fix_zh != f.fix_en or f.code == "scan_other"
    text = render_text(report, "zh")
    assert "触发词 'zk'" in text and "→ 只保留一个" in text
    md = render_markdown(report, "zh")
    assert "处理办法" in md and "每轮步数" in md
    assert "steps per epoch" in render_markdown(report, "en").lower()


def test_nothing_is_modified(tmp_path):
    root = make_fixture(tmp_path / "train")
    before = snapshot(root)
    check_dataset(root, trigger="zk")
    check_dataset(root, caption_ext="caption", resolution=(768, 512), no_upscale=True)
    assert snapshot(root) == before


def test_unusable_folder_names_the_unprefixed_folders(tmp_path):
    (tmp_path / "images").mkdir()
    blocks(1).save(tmp_path / "images" / "a.png")
    report = check_dataset(tmp_path)
    assert [f.code for f in report.findings] == ["no_prefix", "dataset_unusable"]
    assert "10_images" in report.findings[0].fix_en


def test_cli_json_subprocess(dataset):
    cmd = [sys.executable, "-m", "trainer", "check-data", str(dataset), "--trigger", "zk", "--batch-size", "4",
           "--json"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr  # unreadable images are errors
    data = json.loads(out.stdout)
    assert data["steps_per_epoch"] == 26
    assert {f["code"] for f in data["findings"]} >= {"duplicate", "near_duplicate", "missing_trigger"}


def test_cli_text_in_chinese(dataset, capsys):
    from trainer.__main__ import main

    assert main(["check-data", str(dataset / "10_char" / ".."), "--lang", "zh", "--trigger", "zk"]) == 1
    out = capsys.readouterr().out
    assert "触发词 'zk'" in out and "10_char: 10 张图片 × 10 重复" in out
    assert main(["check-data", str(dataset), "--resolution", "abc"]) == 2


def test_the_bundled_demo_dataset_passes_our_own_doctor():
    """What we ship as the example must be an example of a good dataset (default checks and the demo's trigger)."""
    demo = Path(__file__).resolve().parents[1] / "assets" / "demo_dataset"
    report = check_dataset(demo, trigger="demo")
    assert not report.findings, render_text(report)
