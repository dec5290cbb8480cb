"""Existing captions: each action writes exactly the expected text, and originals are backed up."""

from __future__ import annotations

import pytest

from trainer.tagger.writer import BackupFolder, merge_caption, normalise_extension, write_caption

NEW = ["zk", "long hair", "smile"]


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("overwrite", "zk, long hair, smile"),
        ("append", "zk, 1girl, long_hair, red eyes, smile\nsecond line"),
        ("prepend", "zk, long hair, smile, 1girl, red eyes\nsecond line"),
        ("skip", "1girl, long_hair, red eyes\nsecond line"),
    ],
)
def test_merge_actions(action, expected):
    # long_hair and "long hair" are one tag; zk (always-first) stays in front even when appending
    assert merge_caption("1girl, long_hair, red eyes\nsecond line", NEW, action, first=["zk"]) == expected


def test_merge_into_empty_file_and_unknown_action():
    assert merge_caption("  \n", NEW, "append", first=["zk"]) == "zk, long hair, smile"
    with pytest.raises(ValueError, match="'replace'.*skip, overwrite, append, prepend"):
        merge_caption("a", NEW, "replace")


def test_write_new_caption_and_skip_existing(tmp_path):
    img = tmp_path / "a.png"
    assert write_caption(img, NEW, "skip", "txt") == "written"
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "zk, long hair, smile"
    assert write_caption(img, ["other"], "skip", ".txt") == "skipped"
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "zk, long hair, smile"


def test_changed_gbk_caption_is_backed_up_byte_for_byte(tmp_path):
    images, backups = tmp_path / "10_char", tmp_path / "ws" / "backups" / "run1"
    (images / "sub").mkdir(parents=True)
    original = "红色眼睛, smile".encode("gbk")
    (images / "sub" / "a.caption").write_bytes(original)
    backup = BackupFolder(images, backups)
    assert write_caption(images / "sub" / "a.png", NEW, "append", ".caption", backup, ["zk"]) == "written"
    assert (images / "sub" / "a.caption").read_text(encoding="utf-8") == "zk, 红色眼睛, smile, long hair"
    assert (backups / "sub" / "a.caption").read_bytes() == original
    # a second change in the same run keeps the true original in the backup
    assert write_caption(images / "sub" / "a.png", ["x"], "overwrite", ".caption", backup) == "written"
    assert (backups / "sub" / "a.caption").read_bytes() == original
    assert sorted(p.name for p in images.rglob("*")) == ["a.caption", "sub"]  # nothing left beside images


def test_unchanged_caption_is_not_rewritten_or_backed_up(tmp_path):
    (tmp_path / "a.txt").write_text("zk, long hair, smile", encoding="utf-8")
    backup = BackupFolder(tmp_path, tmp_path.parent / "bk-unchanged")
    assert write_caption(tmp_path / "a.png", NEW, "append", ".txt", backup) == "unchanged"
    assert not backup.folder.exists()


@pytest.mark.parametrize("bad", ["", ".", "a/b", ".tar.gz", ". txt"])
def test_bad_extension_is_refused(bad):
    with pytest.raises(ValueError, match="caption extension"):
        normalise_extension(bad)


def test_image_extensions_are_refused_as_caption_extensions(tmp_path):
    from trainer.tagger.writer import normalise_extension

    for ext in (".png", "jpg", ".WEBP", "../x", ""):
        with pytest.raises(ValueError):
            normalise_extension(ext)
    assert normalise_extension("caption") == ".caption"
