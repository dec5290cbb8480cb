"""Duplicate groups (the doctor's) become actionable: keep one, quarantine the rest with captions, restore."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dataset_helpers import tree_digests
from PIL import Image

from trainer.datasets.quarantine import find_groups, quarantine, quarantined, restore
from trainer.doctor import check_dataset


@pytest.fixture
def dataset(tmp_path) -> Path:
    folder = tmp_path / "ws" / "datasets" / "d" / "2_c"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    pic = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    pic.save(folder / "a.png")
    (folder / "b.png").write_bytes((folder / "a.png").read_bytes())
    (folder / "b.txt").write_text("copy")
    pic.resize((80, 80)).save(folder / "c.png")  # a resized copy: near duplicate
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / "other.png")
    return folder.parent


def test_groups_match_the_doctor(dataset):
    groups = find_groups(dataset)
    report = check_dataset(dataset)
    assert [set(g.files) for g in groups if g.exact] == [set(f.files) for f in report.by_code("duplicate")]
    assert [set(g.files) for g in groups if not g.exact] == [set(f.files) for f in report.by_code("near_duplicate")]


def test_quarantine_keeps_one_moves_captions_and_restore_is_exact(dataset):
    ws = dataset.parent.parent
    before = tree_digests(dataset)
    exact = next(g for g in find_groups(dataset) if g.exact)
    keep = str(dataset / "2_c" / "a.png")
    edit = quarantine(ws, dataset, exact, keep)
    assert sorted(p.name for p in (dataset / "2_c").iterdir()) == ["a.png", "c.png", "other.png"]
    assert sorted(p.name for p in (edit.folder / "files" / "2_c").iterdir()) == ["b.png", "b.txt"]
    assert edit.folder.is_relative_to(ws / "quarantine")
    assert not check_dataset(dataset).by_code("duplicate"), "the doctor no longer sees the group"
    assert [e.id for e in quarantined(ws, dataset)] == [edit.id]
    assert restore(edit) == 2
    assert tree_digests(dataset) == before
    assert quarantined(ws, dataset) == []


def test_keep_must_be_in_the_group_and_restore_never_overwrites(dataset):
    ws = dataset.parent.parent
    group = next(g for g in find_groups(dataset) if g.exact)
    with pytest.raises(ValueError, match="not in this group"):
        quarantine(ws, dataset, group, str(dataset / "2_c" / "other.png"))
    edit = quarantine(ws, dataset, group, group.files[0])
    moved = dataset / "2_c" / "b.png"
    moved.write_bytes(b"new file the user made")
    with pytest.raises(ValueError, match="exist"):
        restore(edit)
    assert moved.read_bytes() == b"new file the user made"
