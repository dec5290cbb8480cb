"""Loading a caption folder (encodings, missing captions, extra lines), filters, frequency, undo/redo."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from PIL import Image

from trainer.tags import Filter, apply_op, filter_indices, frequency, load_dataset, make_op, set_tags

CAPTIONS = {  # relative image path -> (caption bytes or None for "no caption file")
    "a.png": "1girl, solo, long_hair, ^_^, (smile:1.2), \\(cosplay\\), solo".encode(),
    "b.png": codecs.BOM_UTF8 + "1girl, blue eyes, o_o\n".encode(),
    "c.jpg": "1girl, 中文标签, >_<".encode("gbk"),
    "d.png": None,
    "e.webp": b"",
    "sub/f.png": "cat, solo\r\nsecond line\r\n".encode("utf-16"),
}


def make_dataset(root: Path) -> Path:
    for rel, data in CAPTIONS.items():
        img = root / rel
        img.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 12), (200, 30, 30)).save(img)
        if data is not None:
            img.with_suffix(".txt").write_bytes(data)
    (root / "notes.txt").write_text("a caption with no image is ignored")
    return root


@pytest.fixture
def ds(tmp_path):
    return load_dataset(make_dataset(tmp_path / "set"), recursive=True)


def test_load_reads_every_encoding_and_keeps_extra_lines(ds):
    assert [it.rel for it in ds.items] == ["a.png", "b.png", "c.jpg", "d.png", "e.webp", "sub/f.png"]
    assert ds.tags == [
        ("1girl", "solo", "long_hair", "^_^", "(smile:1.2)", r"\(cosplay\)", "solo"),
        ("1girl", "blue eyes", "o_o"),
        ("1girl", "中文标签", ">_<"),
        (),
        (),
        ("cat", "solo"),
    ]
    assert [it.encoding for it in ds.items] == ["utf-8", "utf-8-sig", "gb18030", None, "utf-8", "utf-16"]
    assert ds.items[1].tail == "\n"
    assert ds.items[5].tail == "\r\nsecond line\r\n"
    assert ds.unsaved_count == 0


def test_not_recursive_skips_subfolders_and_other_extension(tmp_path):
    root = make_dataset(tmp_path / "set")
    assert [it.rel for it in load_dataset(root).items] == ["a.png", "b.png", "c.jpg", "d.png", "e.webp"]
    (root / "a.caption").write_text("x, y")
    other = load_dataset(root, caption_ext="caption")
    assert other.tags[:2] == [("x", "y"), ()]


def test_bad_folder_and_extension_errors_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(ValueError, match="caption extension '.png'"):
        load_dataset(tmp_path, caption_ext=".png")


def test_a_training_folder_loads_the_images_of_its_repeats_name_subfolders(tmp_path):
    """The folder a run trains on (train_data_dir, which the workspace lists fill in) holds its images in
    <repeats>_<name> sub-folders: loading it without "Include sub-folders" reads those, as the WD tagger does,
    instead of an empty editor."""
    root = tmp_path / "shapes"
    for rel in ("10_zk/a.png", "10_zk/b.png", "2_bg/c.png", "notes/d.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(root / rel)
    (root / "10_zk" / "a.txt").write_text("zk, smile")
    ds = load_dataset(root)
    assert [it.rel for it in ds.items] == ["10_zk/a.png", "10_zk/b.png", "2_bg/c.png"]
    assert ds.tags[0] == ("zk", "smile")
    assert [it.rel for it in load_dataset(root, recursive=True).items][-1] == "notes/d.png"


def test_a_folder_without_images_says_where_they_might_be(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images in .*empty"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "deep" / "pics").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "deep" / "pics" / "a.png")
    with pytest.raises(ValueError, match="Include sub-folders"):
        load_dataset(tmp_path / "deep")
    assert len(load_dataset(tmp_path / "deep", recursive=True)) == 1


def test_frequency_counts_images_not_repeats(ds):
    assert frequency(ds)[:3] == [("1girl", 3), ("solo", 2), ("(smile:1.2)", 1)]  # ties: code-point order
    assert dict(frequency(ds, [0, 5])) == {
        "solo": 2, "1girl": 1, "long_hair": 1, "^_^": 1, "(smile:1.2)": 1, r"\(cosplay\)": 1, "cat": 1}


def test_filters_all_any_none_and_text(ds):
    assert filter_indices(ds) == [0, 1, 2, 3, 4, 5]
    assert filter_indices(ds, Filter(all_of=["1girl", "solo"])) == [0]
    assert filter_indices(ds, Filter(any_of=["o_o", "cat"])) == [1, 5]
    assert filter_indices(ds, Filter(none_of=["1girl"])) == [3, 4, 5]
    assert filter_indices(ds, Filter(any_of=["1girl"], none_of=["solo"])) == [1, 2]
    assert filter_indices(ds, Filter(text="BLUE")) == [1]
    assert filter_indices(ds, Filter(text="sub/")) == [5]


def test_operations_on_filtered_set_only(ds):
    idx = filter_indices(ds, Filter(any_of=["solo"]))
    assert apply_op(ds, idx, make_op("delete", tags=["solo"])) == 2
    assert ds.tags[0] == ("1girl", "long_hair", "^_^", "(smile:1.2)", r"\(cosplay\)")
    assert ds.tags[5] == ("cat",)
    assert ds.tags[1] == ("1girl", "blue eyes", "o_o")
    assert ds.dirty == {0, 5}


def test_empty_caption_gets_tags(ds):
    assert apply_op(ds, [3, 4], make_op("add", tags=["new", "tag"], front=True)) == 2
    assert ds.tags[3] == ("new", "tag") and ds.tags[4] == ("new", "tag")


def test_undo_redo_restore_exact_states(ds):
    states = [list(ds.tags)]
    every = list(range(len(ds)))
    steps = [
        make_op("underscores"), make_op("add", tags=["masterpiece"], front=True), make_op("dedupe"),
        make_op("replace", old="1girl", new="1woman"), make_op("regex", pattern=r"^(\w+) eyes$", repl=r"\1_eyes"),
        make_op("front", tags=["solo"]), make_op("sort", keep_first=1), make_op("escape"), make_op("unescape"),
    ]
    for op in steps:
        if apply_op(ds, every, op):  # an operation that changes nothing records no undo step
            states.append(list(ds.tags))
    assert len(states) == 8  # dedupe and escape changed nothing (underscores already deduplicated)
    assert states[-1][0] == ("solo", "(smile:1.2)", "1woman", "(cosplay)", "^_^", "long hair", "masterpiece")
    assert states[-1][1] == ("masterpiece", "1woman", "blue_eyes", "o_o")
    for expected in reversed(states[:-1]):
        assert ds.history.undo(ds) is not None
        assert ds.tags == expected
    assert ds.history.undo(ds) is None
    assert ds.unsaved_count == 0
    for expected in states[1:]:
        ds.history.redo(ds)
        assert ds.tags == expected
    assert ds.history.redo(ds) is None


def test_history_stores_only_changed_captions(ds):
    apply_op(ds, range(len(ds)), make_op("delete", tags=["cat"]))
    step = ds.history.done[-1]
    assert step.changes == {5: (("cat", "solo"), ("solo",))}
    apply_op(ds, range(len(ds)), make_op("delete", tags=["absent"]))
    assert len(ds.history.done) == 1  # a no-op leaves no undo step


def test_new_operation_clears_redo_and_per_image_edit(ds):
    assert set_tags(ds, 3, ["x", " y ", ""]) is True
    assert ds.tags[3] == ("x", "y")
    ds.history.undo(ds)
    apply_op(ds, [0], make_op("dedupe"))
    assert ds.history.redo(ds) is None
    assert set_tags(ds, 1, ["1girl", "blue eyes", "o_o"]) is False


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("delete", {}, "delete: give at least one tag"),
    ("replace", {"new": "x"}, "replace: give the tag to replace"),
    ("regex", {"pattern": "(unclosed"}, "regex: pattern '\\(unclosed' is invalid"),
    ("regex", {"pattern": "a", "repl": r"\2"}, "regex: replacement .* is invalid"),
    ("explode", {}, "unknown tag operation 'explode'"),
])
def test_bad_operation_parameters(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_op(name, **kwargs)
