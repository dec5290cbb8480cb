"""Dataset scanning: captions in any encoding, class tokens, skipped folders, reg balancing, counts."""

from __future__ import annotations

import codecs

import pytest
from PIL import Image

from trainer.data.problems import DatasetError
from trainer.data.scan import balance_reg, count_images, parse_subset_name, scan_dataset, tag_frequency


def make_image(path, size=(64, 48), color=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


@pytest.mark.parametrize("encoding,expected", [
    ("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030"), ("utf-16", "utf-16"),
])
def test_captions_in_each_encoding_are_read(tmp_path, encoding, expected):
    make_image(tmp_path / "train" / "5_zk" / "a.png")
    (tmp_path / "train" / "5_zk" / "a.txt").write_bytes("红色的圆, 女孩\nsecond line".encode(encoding))
    scan = scan_dataset(tmp_path / "train")
    (item,) = scan.items
    assert item.caption == "红色的圆, 女孩"
    assert item.caption_lines == ("红色的圆, 女孩", "second line")
    assert item.caption_encoding == expected
    assert (item.repeats, item.subset, item.class_token, item.is_reg) == (5, "5_zk", "zk", False)
    assert (item.width, item.height) == (64, 48)


def test_utf16_bom_is_really_there():
    assert "x".encode("utf-16").startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))


def test_class_token_fallback_and_caption_extension(tmp_path):
    make_image(tmp_path / "10_my char" / "a.png")
    make_image(tmp_path / "10_my char" / "b.jpg")
    (tmp_path / "10_my char" / "b.caption").write_text("from caption file", encoding="utf-8")
    (tmp_path / "10_my char" / "a.txt").write_text("ignored: wrong extension", encoding="utf-8")
    scan = scan_dataset(tmp_path, caption_extension="caption")
    assert [(p.caption, p.caption_encoding) for p in scan.items] == [
        ("my char", None), ("from caption file", "utf-8")]


def test_empty_caption_file_uses_class_token_and_says_so(tmp_path):
    make_image(tmp_path / "1_cat" / "a.png")
    (tmp_path / "1_cat" / "a.txt").write_text("  \n\n", encoding="utf-8")
    scan = scan_dataset(tmp_path)
    assert scan.items[0].caption == "cat"
    assert [(p.reason, p.level) for p in scan.problems] == [("caption file is empty", "info")]


def test_folder_without_prefix_and_empty_folder_are_skipped_with_warnings(tmp_path):
    make_image(tmp_path / "3_ok" / "a.png")
    make_image(tmp_path / "noprefix" / "b.png")
    (tmp_path / "2_empty").mkdir()
    make_image(tmp_path / "0_zero" / "c.png")
    make_image(tmp_path / "loose.png")
    scan = scan_dataset(tmp_path)
    assert [it.path for it in scan.items] == [str(tmp_path / "3_ok" / "a.png")]
    by_file = {p.file: p for p in scan.problems}
    assert by_file[str(tmp_path / "noprefix")].reason == "folder name has no '<repeats>_' prefix, skipped"
    assert by_file[str(tmp_path / "noprefix")].hint == "rename it to e.g. 10_noprefix"
    assert by_file[str(tmp_path / "2_empty")].reason.startswith("folder holds no images")
    assert by_file[str(tmp_path / "0_zero")].reason == "repeats is 0, folder skipped"
    assert by_file[str(tmp_path)].reason == "1 image(s) directly in this folder are ignored"
    assert len(scan.problems) == 4


def test_unreadable_header_is_reported_and_others_kept(tmp_path):
    make_image(tmp_path / "1_x" / "good.png")
    (tmp_path / "1_x" / "bad.png").write_bytes(b"not an image at all")
    scan = scan_dataset(tmp_path)
    assert [it.path for it in scan.items] == [str(tmp_path / "1_x" / "good.png")]
    (problem,) = scan.problems
    assert problem.file == str(tmp_path / "1_x" / "bad.png")
    assert problem.reason.startswith("unreadable image header")


def test_missing_or_unusable_train_dir_names_folder_and_layout(tmp_path):
    with pytest.raises(DatasetError, match=r"does not exist.*10_mychar"):
        scan_dataset(tmp_path / "nope")
    make_image(tmp_path / "loose.png")
    with pytest.raises(DatasetError) as err:
        scan_dataset(tmp_path)
    assert str(tmp_path) in str(err.value) and "10_mychar" in str(err.value)
    assert "directly in this folder" in str(err.value)


def test_exif_rotated_jpeg_header_size_is_upright(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "1_r" / "rot.jpg"
    path.parent.mkdir()
    Image.new("RGB", (40, 20)).save(path, exif=exif)
    Image.new("RGB", (40, 20)).save(tmp_path / "1_r" / "rot.webp", exif=exif)
    scan = scan_dataset(tmp_path)
    assert [(it.width, it.height) for it in scan.items] == [(20, 40), (20, 40)]


def test_recursive_finds_nested_images(tmp_path):
    make_image(tmp_path / "2_a" / "top.png")
    make_image(tmp_path / "2_a" / "deeper" / "nested.png")
    assert len(scan_dataset(tmp_path).items) == 1
    assert len(scan_dataset(tmp_path, recursive=True).items) == 2


def test_reg_images_are_repeated_to_match_train_images_times_repeats(tmp_path):
    for name in "ab":
        make_image(tmp_path / "train" / "10_zk" / f"{name}.png")
    for name in "xyz":
        make_image(tmp_path / "reg" / "1_person" / f"{name}.png")
    scan = scan_dataset(tmp_path / "train", reg_dir=tmp_path / "reg")
    assert [(it.class_token, it.repeats, it.is_reg) for it in scan.reg_items] == [
        ("person", 7, True), ("person", 7, True), ("person", 6, True)]
    counts = count_images(scan)
    assert (counts.train_images, counts.train_repeated, counts.reg_images, counts.reg_repeated) == (2, 20, 3, 20)


def test_reg_balancing_stops_once_the_target_is_reached():
    from trainer.data.scan import ImageItem

    reg = [ImageItem(f"{n}.png", "p", 15, "15_p", "p", True, 8, 8) for n in range(3)]
    assert [it.repeats for it in balance_reg(reg, 20)] == [15, 15]
    assert balance_reg(reg, 0) == []


def test_parse_subset_name():
    assert parse_subset_name("10_my_char") == (10, "my_char")
    assert parse_subset_name("3_") == (3, "")
    assert parse_subset_name("char_10") is None
    assert parse_subset_name("10") is None


def test_tag_frequency_counts_images_per_folder(tmp_path):
    for name, caption in [("a", "zk, Red circle, zk"), ("b", "zk, blue"), ("c", None)]:
        make_image(tmp_path / "5_zk" / f"{name}.png")
        if caption:
            (tmp_path / "5_zk" / f"{name}.txt").write_text(caption, encoding="utf-8")
    make_image(tmp_path / "2_other" / "d.png")
    assert tag_frequency(scan_dataset(tmp_path)) == {
        "2_other": {"other": 1}, "5_zk": {"zk": 3, "blue": 1, "red circle": 1}}


def test_utf16_caption_without_bom_is_detected():
    from trainer.textio import decode

    assert decode("1girl, solo".encode("utf-16-le")) == ("1girl, solo", "utf-16-le")
    assert decode("1girl, solo".encode("utf-8")) == ("1girl, solo", "utf-8")


def _png_with_exif_after_pixels(path, size, exif: bytes) -> None:
    """A PNG whose eXIf chunk comes after the image data (allowed by the PNG spec; some tools write it so)."""
    import struct
    import zlib

    Image.new("RGB", size).save(path)
    data = path.read_bytes()
    chunk = struct.pack(">I", len(exif)) + b"eXIf" + exif + struct.pack(">I", zlib.crc32(b"eXIf" + exif))
    iend = data.rindex(b"IEND") - 4
    path.write_bytes(data[:iend] + chunk + data[iend:])


def test_png_sizes_come_from_the_header_without_decoding_pixels(tmp_path, monkeypatch):
    """The scan reads headers only: decoding every PNG (as Pillow's getexif does when looking for EXIF) made
    the "header" scan slower than decoding each image outright (bench/dataset_scan.py)."""
    from PIL import ImageFile

    make_image(tmp_path / "1_p" / "plain.png", size=(64, 48))
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (40, 20)).save(tmp_path / "1_p" / "rot_early.png", exif=exif)
    _png_with_exif_after_pixels(tmp_path / "1_p" / "rot_late.png", (40, 20), exif.tobytes())
    decoded = []
    original = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.filename) or original(self))
    scan = scan_dataset(tmp_path)
    sizes = {it.path.rsplit("/", 1)[-1]: (it.width, it.height) for it in scan.items}
    assert sizes == {"plain.png": (64, 48), "rot_early.png": (20, 40), "rot_late.png": (20, 40)}
    assert all(name.endswith("rot_late.png") for name in decoded)  # only where EXIF may follow the pixels
