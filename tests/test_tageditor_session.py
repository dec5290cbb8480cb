"""The Tag Editor tab's session logic (no browser): paging, thumbnails cache, editor, bulk preview."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from trainer.tags.thumbs import thumb_path, thumbnail
from ui.i18n import translate
from ui.tabs.tag_editor_session import PAGE_SIZE, Notice, Session, op_from_form


@pytest.fixture
def root(tmp_path) -> Path:
    root = tmp_path / "set"
    root.mkdir()
    for i in range(PAGE_SIZE + 2):
        Image.new("RGB", (300, 200), (i, 0, 0)).save(root / f"{i:03d}.png")
        tags = "solo, red" if i % 2 else "duo"
        (root / f"{i:03d}.txt").write_text(tags)
    return root


def test_thumbnail_cached_by_path_mtime_size(tmp_path, root):
    cache = tmp_path / "thumbs"
    image = root / "000.png"
    first = thumbnail(image, cache)
    with Image.open(first) as im:
        assert im.size == (256, 171) and im.format == "JPEG"
    mtime = first.stat().st_mtime_ns
    assert thumbnail(image, cache) == first and first.stat().st_mtime_ns == mtime  # not re-made
    Image.new("RGB", (40, 40)).save(image)
    os.utime(image, ns=(10**18, 10**18))
    assert thumb_path(image, cache) != first  # an edited image gets a new key


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png: cannot read this image"):
        thumbnail(bad, tmp_path / "thumbs")


def test_paging_and_gallery(tmp_path, root):
    s = Session()
    s.load(str(root), ".txt", False, ", ")
    assert (len(s.shown), s.page_count) == (PAGE_SIZE + 2, 2)
    page = s.gallery(tmp_path / "thumbs")
    assert len(page) == PAGE_SIZE and page[0][1] == "000.png" and Path(page[0][0]).is_file()
    s.turn_page(1)
    assert [c for _, c in s.gallery(tmp_path / "thumbs")] == ["048.png", "049.png"]
    s.turn_page(5)
    assert s.page == 1


def test_gallery_captions_are_file_names_inside_concept_folders(tmp_path):
    """A training folder's images lie in <repeats>_<name> sub-folders: the gallery's narrow caption shows the
    file's own name (the image panel shows the whole path), not '10_mychar/0…' cut off."""
    from PIL import Image

    sub = tmp_path / "set" / "10_mychar"
    sub.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(sub / "portrait.png")
    s = Session()
    s.load(str(tmp_path / "set"), ".txt", False, ", ")
    assert [c for _, c in s.gallery(tmp_path / "thumbs")] == ["portrait.png"]


def test_click_tag_filters_and_bulk_delete_preview(root):
    s = Session()
    s.load(str(root), ".txt", False, ", ")
    assert s.freq_rows() == [["duo", 25], ["red", 25], ["solo", 25]]
    assert s.freq_rows("so") == [["solo", 25]]
    s.add_filter_tag("solo")
    assert len(s.shown) == 25 and s.shown[0] == 1
    op = op_from_form("delete", tags_text="solo")
    assert s.preview(op) == 25 and s.ds.unsaved_count == 0
    assert s.apply(op) == 25
    assert s.shown == [] and s.ds.unsaved_count == 25
    assert s.undo() == "delete: solo" and len(s.shown) == 25


def test_editor_steps_across_pages_and_edits(tmp_path, root):
    s = Session()
    s.load(str(root), ".txt", False, ", ")
    s.step(-1)
    assert s.current == PAGE_SIZE + 1 and s.page == 1
    (root / "049.png").write_bytes(b"broken")
    assert [c for _, c in s.gallery(tmp_path / "thumbs")] == ["048.png"]  # unreadable image left out
    s.select_on_page(0)
    assert s.current == PAGE_SIZE
    assert s.edit_current("duo, extra") is True
    image, tags, caption, where = s.current_view(tmp_path / "thumbs")
    assert tags == ["duo", "extra"] and caption == "duo, extra" and where == "048.png (49 / 50)"
    assert Path(image).is_file()


def test_notices_for_missing_input(tmp_path):
    s = Session()
    with pytest.raises(Notice) as exc:
        s.load("  ", ".txt", False, ", ")
    assert translate(f"tag_editor.{exc.value.key}", "zh") == "请先输入数据集文件夹的路径。"
    with pytest.raises(Notice, match="need_load"):
        s.apply(op_from_form("dedupe"))


def test_reload_with_unsaved_edits_needs_a_second_click(root):
    s = Session()
    s.load(str(root), ".txt", False, ", ")
    s.apply(op_from_form("add", tags_text="x"))
    with pytest.raises(Notice) as exc:
        s.load(str(root), ".txt", False, ", ")
    text = translate(f"tag_editor.{exc.value.key}", "en", **exc.value.fmt)
    assert text == "50 unsaved changes would be lost. Save them first, or press Load again to discard them."
    assert s.ds.unsaved_count == 50
    s.load(str(root), ".txt", False, ", ")
    assert s.ds.unsaved_count == 0 and s.ds.tags[0] == ("duo",)


def test_save_after_an_outside_change_needs_overwrite_and_keeps_a_backup(tmp_path):
    from trainer.tags.save import ConflictError
    from ui.tabs.tag_editor_session import Session

    folder = tmp_path / "10_x"
    folder.mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(folder / "a.png")
    (folder / "a.txt").write_text("solo, smile", encoding="utf-8")
    sess = Session()
    sess.load(str(folder), ".txt", False, ", ")
    sess.edit_current("solo")
    (folder / "a.txt").write_text("tagged elsewhere", encoding="utf-8")  # e.g. the WD tagger ran meanwhile
    import pytest

    with pytest.raises(ConflictError):
        sess.save("keep", True, tmp_path / "backups")
    report = sess.save("keep", True, tmp_path / "backups", force=True)
    assert (folder / "a.txt").read_text(encoding="utf-8") == "solo"
    backed = list((tmp_path / "backups").rglob("a.txt"))
    assert backed and backed[0].read_text(encoding="utf-8") == "tagged elsewhere" and report.written
