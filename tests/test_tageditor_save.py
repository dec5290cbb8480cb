"""Saving: only changed files, encodings kept or normalised, backups, crash safety, outside edits."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

import pytest
from PIL import Image

from trainer import textio
from trainer.tags import apply_op, load_dataset, make_op, save_dataset
from trainer.tags.save import ConflictError, pending_indices

FILES = {
    "a": "a, solo, b".encode(),
    "b": codecs.BOM_UTF8 + "solo, x\n".encode(),
    "c": "solo, 中文".encode("gbk"),
    "d": None,
    "e": "keep, me".encode(),
    "f": "solo, y\r\nline two\r\n".encode("utf-16"),
}


@pytest.fixture
def root(tmp_path) -> Path:
    root = tmp_path / "10_set"
    root.mkdir()
    for stem, data in FILES.items():
        Image.new("RGB", (8, 8)).save(root / f"{stem}.png")
        if data is not None:
            (root / f"{stem}.txt").write_bytes(data)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.glob("*.txt"))}


def test_nothing_is_written_before_save(root):
    before = snapshot(root)
    ds = load_dataset(root)
    apply_op(ds, range(len(ds)), make_op("delete", tags=["solo"]))
    assert snapshot(root) == before
    assert ds.unsaved_count == 4


def test_save_writes_changed_files_only_keeping_encodings(root, tmp_path):
    ds = load_dataset(root)
    e_stat = (root / "e.txt").stat().st_mtime_ns
    apply_op(ds, range(len(ds)), make_op("delete", tags=["solo"]))
    apply_op(ds, [3], make_op("add", tags=["新"]))
    report = save_dataset(ds)
    assert [p.name for p in report.written] == ["a.txt", "b.txt", "c.txt", "d.txt", "f.txt"]
    assert [p.name for p in report.created] == ["d.txt"]
    assert snapshot(root) == {
        "a.txt": b"a, b",
        "b.txt": codecs.BOM_UTF8 + b"x\n",
        "c.txt": "中文".encode("gbk"),
        "d.txt": "新".encode(),
        "e.txt": b"keep, me",
        "f.txt": "y\r\nline two\r\n".encode("utf-16"),
    }
    assert (root / "e.txt").stat().st_mtime_ns == e_stat
    assert ds.unsaved_count == 0 and save_dataset(ds).written == []


def test_backup_holds_old_text_outside_the_dataset(root):
    ds = load_dataset(root)
    apply_op(ds, range(len(ds)), make_op("add", tags=["z"]))
    old = snapshot(root)
    report = save_dataset(ds)
    bdir = report.backup_dir
    assert bdir.parent == root.parent and bdir.name.startswith("caption_backup_10_set_")
    assert {p.name: p.read_bytes() for p in bdir.glob("*.txt") if p.name != "_new_files.txt"} == old
    assert (bdir / "_new_files.txt").read_text() == "d.txt\n"
    assert not any(p.is_dir() for p in root.iterdir())


def test_backup_root_and_no_backup(root, tmp_path):
    ds = load_dataset(root)
    apply_op(ds, [0], make_op("add", tags=["z"]))
    report = save_dataset(ds, backup_root=tmp_path / "ws" / "backups")
    assert report.backup_dir.parent == tmp_path / "ws" / "backups"
    assert (report.backup_dir / "a.txt").read_bytes() == b"a, solo, b"
    apply_op(ds, [0], make_op("add", tags=["w"]))
    assert save_dataset(ds, backup=False).backup_dir is None
    assert (root / "a.txt").read_bytes() == b"a, solo, b, z, w"


def test_normalise_to_utf8_rewrites_non_utf8_files_too(root):
    ds = load_dataset(root)
    assert pending_indices(ds, "utf-8") == [1, 2, 5]
    report = save_dataset(ds, encoding="utf-8", backup=False)
    assert [p.name for p in report.written] == ["b.txt", "c.txt", "f.txt"]
    assert (root / "b.txt").read_bytes() == b"solo, x\n"
    assert (root / "c.txt").read_bytes() == "solo, 中文".encode()
    assert (root / "f.txt").read_bytes() == b"solo, y\r\nline two\r\n"
    with pytest.raises(ValueError, match="encoding 'latin-1'"):
        save_dataset(ds, encoding="latin-1")


def test_crash_after_second_file_leaves_each_file_old_or_new(root, monkeypatch):
    ds = load_dataset(root)
    old = snapshot(root)
    apply_op(ds, range(len(ds)), make_op("add", tags=["new"]))
    real, calls = textio.atomic_write_bytes, []

    def flaky(path, data):
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        calls.append(path)
        real(path, data)

    monkeypatch.setattr(textio, "atomic_write_bytes", flaky)
    with pytest.raises(OSError, match="simulated"):
        save_dataset(ds, backup=False)
    after = snapshot(root)
    assert after["a.txt"] == b"a, solo, b, new"
    assert after["b.txt"] == codecs.BOM_UTF8 + b"solo, x, new\n"
    for name in ("c.txt", "e.txt", "f.txt"):
        assert after[name] == old[name]
    assert "d.txt" not in after
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]
    # A second save writes only what is left.
    monkeypatch.setattr(textio, "atomic_write_bytes", real)
    assert [p.name for p in save_dataset(ds, backup=False).written] == ["c.txt", "d.txt", "e.txt", "f.txt"]


def test_captions_edited_elsewhere_are_not_overwritten(root):
    ds = load_dataset(root)
    apply_op(ds, range(len(ds)), make_op("add", tags=["mine"]))
    (root / "e.txt").write_text("someone else's edit, longer")
    os.utime(root / "e.txt", ns=(1, 1))
    before = snapshot(root)
    with pytest.raises(ConflictError, match=r"1 caption file\(s\) changed on disk.*e\.txt.*reload the folder"):
        save_dataset(ds)
    assert snapshot(root) == before
    save_dataset(ds, force=True, backup=False)
    assert (root / "e.txt").read_bytes() == b"keep, me, mine"


def test_two_images_sharing_one_caption_must_agree(root):
    Image.new("RGB", (8, 8)).save(root / "a.jpg")
    ds = load_dataset(root)
    assert [it.rel for it in ds.items][:2] == ["a.jpg", "a.png"] and ds.tags[0] == ds.tags[1]
    apply_op(ds, [0], make_op("add", tags=["z"]))
    with pytest.raises(ValueError, match="a.jpg and a.png share the caption file .*a.txt"):
        save_dataset(ds)
    assert (root / "a.txt").read_bytes() == b"a, solo, b"
    apply_op(ds, [1], make_op("add", tags=["z"]))
    save_dataset(ds, backup=False)
    assert (root / "a.txt").read_bytes() == b"a, solo, b, z"
