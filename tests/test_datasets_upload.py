"""Uploads land as kohya datasets in the workspace; unsafe archives are refused with nothing written."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from trainer.data.scan import scan_dataset
from trainer.datasets import list_datasets
from trainer.datasets.archive import zip_path
from trainer.datasets.upload import ImportRefused, Limits, apply_import, plan_import


def png_bytes(color=(255, 0, 0), size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def make_zip(path: Path, entries: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def test_flat_zip_becomes_repeats_concept_folder_with_captions(tmp_path):
    z = make_zip(tmp_path / "up.zip", {"pics/a.png": png_bytes(), "pics/a.txt": b"zk, red",
                                       "pics/b.png": png_bytes((0, 0, 255)), "pics/notes.md": b"x",
                                       "__MACOSX/pics/._a.png": b"junk"})
    ws = tmp_path / "ws"
    plan = plan_import([z], ws / "datasets", "mine", 5, "zk")
    assert "5_zk/  2 images, 1 captions" in plan.preview()
    assert not (ws / "datasets").exists(), "planning writes nothing"
    root = apply_import(plan)
    assert sorted(p.name for p in (root / "5_zk").iterdir()) == ["a.png", "a.txt", "b.png"]
    scan = scan_dataset(root)
    assert {it.caption for it in scan.items} == {"zk, red", "zk"}
    assert [p.name for p in list_datasets(ws)] == ["mine"]
    assert not [p for p in (ws / "datasets").iterdir() if p.name.startswith(".")], "staging folder removed"


def test_zip_in_kohya_layout_keeps_its_folders(tmp_path):
    z = make_zip(tmp_path / "k.zip", {"set/10_one/a.png": png_bytes(), "set/3_two/b.png": png_bytes(),
                                      "set/3_two/b.caption": b"two"})
    root = apply_import(plan_import([z], tmp_path / "datasets", "k", 1, "ignored"))
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*.*")) == ["10_one/a.png", "3_two/b.caption",
                                                                           "3_two/b.png"]


def test_loose_files_clashing_names_are_renamed_and_captions_follow(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    (one / "a.png").write_bytes(png_bytes())
    (two / "a.png").write_bytes(png_bytes((0, 255, 0)))
    z = make_zip(tmp_path / "z.zip", {"x/a.png": png_bytes((1, 2, 3)), "x/a.txt": b"from zip"})
    root = apply_import(plan_import([one / "a.png", z], tmp_path / "ds", "n", 2, "c"))
    names = sorted(p.name for p in (root / "2_c").iterdir())
    assert names == ["a-2.png", "a-2.txt", "a.png"]
    assert (root / "2_c" / "a-2.txt").read_text() == "from zip"


@pytest.mark.parametrize("bad", ["../evil.png", "/etc/evil.png", "C:/evil.png", "a/../../evil.png", "..\\evil.png"])
def test_zip_slip_and_absolute_names_are_refused_and_nothing_written(tmp_path, bad):
    z = make_zip(tmp_path / "bad.zip", {"ok.png": png_bytes(), bad: png_bytes()})
    ws = tmp_path / "ws"
    with pytest.raises(ImportRefused, match="nothing was written"):
        plan_import([z], ws / "datasets", "d", 1, "c")
    assert not ws.exists()
    assert not (tmp_path / "evil.png").exists()


def test_symlink_entries_are_refused(tmp_path):
    z = make_zip(tmp_path / "l.zip", {"ok.png": png_bytes()}, links={"link.png": "/etc/passwd"})
    with pytest.raises(ImportRefused, match="symbolic link"):
        plan_import([z], tmp_path / "ds", "d", 1, "c")


def test_oversized_and_bomb_archives_are_refused(tmp_path):
    z = make_zip(tmp_path / "big.zip", {"a.png": png_bytes(), "b.png": png_bytes((9, 9, 9))})
    with pytest.raises(ImportRefused, match="expands"):
        plan_import([z], tmp_path / "ds", "d", 1, "c", limits=Limits(max_bytes=200))
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.png", png_bytes())
        zf.writestr("zeros.bmp", b"\0" * (8 * 2**20))
    with pytest.raises(ImportRefused, match="expands"):
        plan_import([bomb], tmp_path / "ds", "d", 1, "c")
    assert not (tmp_path / "ds").exists()


def test_existing_dataset_is_never_overwritten_merge_renames(tmp_path):
    z = make_zip(tmp_path / "z.zip", {"a.png": png_bytes(), "a.txt": b"new"})
    ds = tmp_path / "ds"
    apply_import(plan_import([z], ds, "d", 1, "c"))
    with pytest.raises(ImportRefused, match="d-2"):
        plan_import([z], ds, "d", 1, "c")
    apply_import(plan_import([z], ds, "d", 1, "c", merge=True))
    folder = ds / "d" / "1_c"
    assert sorted(p.name for p in folder.iterdir()) == ["a-2.png", "a-2.txt", "a.png", "a.txt"]
    assert (folder / "a.txt").read_text() == "new"


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", ""])
def test_unsafe_dataset_names_are_refused(tmp_path, name):
    z = make_zip(tmp_path / "z.zip", {"a.png": png_bytes()})
    with pytest.raises(ValueError, match="Dataset name"):
        plan_import([z], tmp_path / "ds", name, 1, "c")


def test_zip_path_packs_a_run_folder_without_symlinks(tmp_path):
    run = tmp_path / "runs" / "r1"
    (run / "sub").mkdir(parents=True)
    (run / "a.safetensors").write_bytes(b"abc")
    (run / "sub" / "events.jsonl").write_text("{}")
    secret = tmp_path / "secret.txt"
    secret.write_text("no")
    (run / "leak.txt").symlink_to(secret)
    z = zip_path(run, tmp_path / "cache")
    with zipfile.ZipFile(z) as zf:
        assert sorted(zf.namelist()) == ["r1/a.safetensors", "r1/sub/events.jsonl"]
