"""`python -m trainer tags ...` end to end on a small folder (in-process, through the real parser)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from trainer.__main__ import main


@pytest.fixture
def root(tmp_path) -> Path:
    root = tmp_path / "set"
    root.mkdir()
    for stem, text in {"a": "1girl, solo, long_hair", "b": "1girl, red eyes", "c": None}.items():
        Image.new("RGB", (8, 8)).save(root / f"{stem}.png")
        if text is not None:
            (root / f"{stem}.txt").write_text(text, encoding="utf-8")
    return root


def test_freq(root, capsys):
    assert main(["tags", "freq", str(root), "--top", "2"]) == 0
    assert capsys.readouterr().out == "2\t1girl\n1\tlong_hair\n# 3 of 3 images, 4 distinct tags\n"


def test_a_training_folder_means_its_repeats_name_subfolders(root, capsys):
    """Pointed at the train_data_dir of a run (images only in <repeats>_<name> sub-folders), as a user does."""
    training = root.parent / "train"
    training.mkdir()
    root.rename(training / "10_set")
    assert main(["tags", "freq", str(training), "--top", "1"]) == 0
    assert capsys.readouterr().out == "2\t1girl\n# 3 of 3 images, 4 distinct tags\n"
    assert main(["tags", "freq", str(training.parent / "nothing-here")]) == 2
    (training.parent / "empty").mkdir()
    assert main(["tags", "freq", str(training.parent / "empty")]) == 2
    assert "no images in" in capsys.readouterr().out


def test_delete_with_filter_saves_with_backup(root, capsys, tmp_path):
    assert main(["tags", "delete", str(root), "--tag", "1girl", "--filter-any", "solo"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("delete: 1girl: changed 1 of 1 selected images; wrote 1 files\n")
    assert (root / "a.txt").read_text() == "solo, long_hair"
    assert (root / "b.txt").read_text() == "1girl, red eyes"
    backups = list(tmp_path.glob("caption_backup_set_*"))
    assert len(backups) == 1 and (backups[0] / "a.txt").read_text() == "1girl, solo, long_hair"


def test_add_front_creates_missing_caption_and_dry_run(root, capsys):
    assert main(["tags", "add", str(root), "--tag", "masterpiece, (best:1.2)", "--front", "--dry-run"]) == 0
    assert capsys.readouterr().out == "add (front): masterpiece, (best:1.2): would change 3 of 3 selected images\n"
    assert not (root / "c.txt").exists()
    assert main(["tags", "add", str(root), "--tag", "masterpiece", "--front", "--no-backup"]) == 0
    assert (root / "c.txt").read_text() == "masterpiece"
    assert (root / "a.txt").read_text() == "masterpiece, 1girl, solo, long_hair"


def test_replace_regex_and_underscores(root):
    assert main(["tags", "replace", str(root), "--old", "red eyes", "--new", "blue eyes", "--no-backup"]) == 0
    assert (root / "b.txt").read_text() == "1girl, blue eyes"
    assert main(["tags", "underscores", str(root), "--no-backup"]) == 0
    assert (root / "a.txt").read_text() == "1girl, solo, long hair"
    assert main(["tags", "regex", str(root), "--pattern", r"^(\w+) eyes$", "--repl", r"\1_eyes",
                 "--no-backup", "--separator", ","]) == 0
    assert (root / "b.txt").read_text() == "1girl,blue_eyes"


def test_errors_are_messages_not_tracebacks(root, capsys, tmp_path):
    assert main(["tags", "regex", str(root), "--pattern", "(", "--no-backup"]) == 2
    assert "regex: pattern '(' is invalid" in capsys.readouterr().out
    assert main(["tags", "freq", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().out
