"""Finding the images of a kohya-style dataset folder, their captions, repeats and header sizes.

Layout (sd-scripts convention): `<train_dir>/<repeats>_<name>/<image>` with an optional sidecar caption
`<image stem><caption_extension>`. Sizes come from the file header only (imagesize), so scanning thousands
of images takes a moment, not minutes.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import imagesize

from trainer.data.problems import DatasetError, Problem
from trainer.textio import read_text
from trainer.walk import escapes, walk_files

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# Pillow refuses to decode more than twice its MAX_IMAGE_PIXELS (a decompression-bomb guard); refusing at the
# header, at Pillow's own limit, stops such a file before training meets it mid-epoch.
MAX_PIXELS = 89_478_485  # PIL.Image.MAX_IMAGE_PIXELS, without importing Pillow for a scan
MAX_SIDE = 32_768
_SUBSET_NAME = re.compile(r"^(\d+)_(.*)$", re.DOTALL)
_LAYOUT_HINT = "expected sub-folders named <repeats>_<name>, e.g. {root}/10_mychar/001.png"


@dataclass(frozen=True)
class ImageItem:
    """One image of the dataset. width/height are the upright size (EXIF rotation applied where known)."""

    path: str
    caption: str  # first non-blank line of the caption file, or the class token
    repeats: int
    subset: str  # folder name, e.g. "10_mychar" (the key of ss_tag_frequency)
    class_token: str  # folder name after the "<repeats>_" prefix
    is_reg: bool
    width: int
    height: int
    caption_encoding: str | None = None  # None when there was no caption file
    caption_lines: tuple[str, ...] = ()  # every non-blank line, for wildcard captions


@dataclass
class DatasetScan:
    train_dir: str
    reg_dir: str | None
    items: list[ImageItem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def train_items(self) -> list[ImageItem]:
        return [it for it in self.items if not it.is_reg]

    @property
    def reg_items(self) -> list[ImageItem]:
        return [it for it in self.items if it.is_reg]


@dataclass(frozen=True)
class ImageCounts:
    train_images: int  # distinct training images
    train_repeated: int  # images x repeats: one epoch's worth (ss_num_train_images)
    reg_images: int
    reg_repeated: int


def scan_dataset(train_dir, *, caption_extension: str = ".txt", reg_dir=None,
                 recursive: bool = False) -> DatasetScan:
    """Scan `train_dir` (and `reg_dir`) into items and problems. Raises DatasetError when unusable."""
    root = Path(train_dir)
    if not root.is_dir():
        raise DatasetError(f"training folder {root} does not exist; " + _LAYOUT_HINT.format(root=root))
    ext = normalise_extension(caption_extension)
    scan = DatasetScan(train_dir=str(root), reg_dir=str(reg_dir) if reg_dir else None)
    train = _scan_parent(root, ext, recursive, False, scan.problems)
    if not train:
        raise DatasetError(f"no usable images in {root}; " + _LAYOUT_HINT.format(root=root)
                           + _problem_summary(scan.problems))
    reg: list[ImageItem] = []
    if reg_dir:
        reg_root = Path(reg_dir)
        if not reg_root.is_dir():
            raise DatasetError(f"regularisation folder {reg_root} does not exist; "
                               + _LAYOUT_HINT.format(root=reg_root) + " (or leave it empty)")
        reg = _scan_parent(reg_root, ext, recursive, True, scan.problems)
        if not reg:
            scan.problems.append(Problem(str(reg_root), "no usable regularisation images",
                                         "training goes on without them"))
        reg = balance_reg(reg, sum(it.repeats for it in train))
    scan.items = train + reg
    return scan


def normalise_extension(ext: str) -> str:
    """'.txt' or 'txt' -> '.txt'. Refuses what could overwrite images or escape the folder: every tool that
    writes captions goes through here."""
    raw = ext
    ext = ext.strip()
    ext = ext if ext.startswith(".") else "." + ext
    if len(ext) < 2 or ext.count(".") != 1 or any(c in ext for c in "/\\ ") or ext.lower() in IMAGE_EXTENSIONS:
        raise DatasetError(f"caption extension '{raw}' is not usable; use e.g. .txt or .caption")
    return ext


def parse_subset_name(name: str) -> tuple[int, str] | None:
    """'10_my char' -> (10, 'my char'); None without the numeric prefix."""
    m = _SUBSET_NAME.match(name)
    return (int(m.group(1)), m.group(2)) if m else None


def balance_reg(reg: list[ImageItem], train_repeated: int) -> list[ImageItem]:
    """Give reg images repeats so that they add up to `train_repeated` (sd-scripts' rule).

    First pass: each reg image in order joins with its folder's repeats until the target is reached;
    later passes add one repeat per image in order. Images never reached are left out.
    """
    if not reg or train_repeated <= 0:
        return []
    counts: list[int] = []
    total = 0
    for item in reg:
        if total >= train_repeated:
            break
        counts.append(item.repeats)
        total += item.repeats
    i = 0
    while total < train_repeated:
        counts[i % len(counts)] += 1
        total += 1
        i += 1
    return [replace(item, repeats=n) for item, n in zip(reg, counts, strict=False)]  # unreached reg images drop out


def tag_frequency(scan: DatasetScan) -> dict[str, dict[str, int]]:
    """{folder: {tag: images with that tag}} for training folders (ss_tag_frequency). Tags lower-cased."""
    freq: dict[str, Counter] = {}
    for item in scan.train_items:
        tags = {t.strip().lower() for t in item.caption.split(",") if t.strip()}
        freq.setdefault(item.subset, Counter()).update(tags)
    return {folder: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) for folder, c in freq.items()}


def count_images(scan: DatasetScan) -> ImageCounts:
    train, reg = scan.train_items, scan.reg_items
    return ImageCounts(len(train), sum(it.repeats for it in train), len(reg), sum(it.repeats for it in reg))


def _scan_parent(parent: Path, ext: str, recursive: bool, is_reg: bool,
                 problems: list[Problem]) -> list[ImageItem]:
    items: list[ImageItem] = []
    real_parent = os.path.realpath(parent)
    for sub in sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if sub.is_symlink() and escapes(sub, real_parent):
            problems.append(Problem(str(sub), f"folder symlink pointing outside {parent}; not followed",
                                    "copy the images in, or use it as its own dataset folder"))
            continue
        parsed = parse_subset_name(sub.name)
        if parsed is None:
            problems.append(Problem(str(sub), "folder name has no '<repeats>_' prefix, skipped",
                                    f"rename it to e.g. 10_{sub.name}"))
            continue
        repeats, class_token = parsed
        if repeats <= 0:
            problems.append(Problem(str(sub), "repeats is 0, folder skipped", "use 1 or more, e.g. 1_" + class_token))
            continue
        files = _image_files(sub, recursive, problems)
        if not files:
            problems.append(Problem(str(sub), "folder holds no images (" + " ".join(IMAGE_EXTENSIONS) + ")",
                                    "add images or remove the folder"))
            continue
        for path in files:
            item = _read_item(path, ext, repeats, sub.name, class_token, is_reg, problems)
            if item is not None:
                items.append(item)
    loose = _image_files(parent, False, [])
    if loose:
        problems.append(Problem(str(parent), f"{len(loose)} image(s) directly in this folder are ignored",
                                f"move them into a sub-folder such as {parent / '10_name'}"))
    return items


def _image_files(folder: Path, recursive: bool, problems: list[Problem]) -> list[Path]:
    listing = walk_files(folder, IMAGE_EXTENSIONS, recursive=recursive)
    problems += [Problem(path, why, "skipped; replace it with a regular file or folder inside the dataset")
                 for path, why in listing.skipped]
    return sorted(Path(p) for p in listing.files)


def _read_item(path: Path, ext: str, repeats: int, subset: str, class_token: str, is_reg: bool,
               problems: list[Problem]) -> ImageItem | None:
    size = header_size(path)
    if isinstance(size, str):
        problems.append(Problem(str(path), size, "re-save the image as PNG or JPEG, or remove it"))
        return None
    lines, encoding = _read_caption_lines(path, ext, problems)
    caption = lines[0] if lines else class_token
    return ImageItem(str(path), caption, repeats, subset, class_token, is_reg, size[0], size[1],
                     encoding, tuple(lines))


def header_size(path: Path) -> tuple[int, int] | str:
    """Upright (width, height) from the header, or the reason it could not be read."""
    try:
        width, height = imagesize.get(path)  # applies JPEG EXIF rotation itself
    except Exception as exc:  # imagesize raises assorted errors on odd files
        return f"unreadable image header ({type(exc).__name__}: {exc})"
    if width <= 0 or height <= 0:
        return "unreadable image header (not a valid image, or a truncated file)"
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        return (f"image claims {width}x{height} pixels, more than can be decoded safely (at most {MAX_SIDE} a side "
                f"and {MAX_PIXELS:,} in all); a damaged file or a decompression bomb")
    if path.suffix.lower() in (".webp", ".png") and _pil_orientation_swaps(path):
        width, height = height, width  # imagesize does not look at EXIF in these formats
    return width, height


def _pil_orientation_swaps(path: Path) -> bool:
    from PIL import Image  # lazy open: reads the header, not the pixels

    try:
        with Image.open(path) as img:
            # Pillow's getexif() on a PNG without an eXIf chunk before the pixels decodes the whole image to look
            # for one after them; a byte search finds out without decoding (a false hit only costs that decode).
            if img.format == "PNG" and "exif" not in img.info and b"eXIf" not in path.read_bytes():
                return False
            return img.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except Exception:
        return False  # the full load reports a broken file later


def _read_caption_lines(image: Path, ext: str, problems: list[Problem]) -> tuple[list[str], str | None]:
    caption_path = image.with_suffix(ext)
    if not os.path.lexists(caption_path):
        return [], None
    try:  # only a regular file, not a symlink: a caption pointing elsewhere is reported, not read
        text, encoding = read_text(caption_path, follow_symlinks=False)
    except OSError as exc:
        problems.append(Problem(str(caption_path), f"cannot read caption ({exc})", "using the folder name"))
        return [], None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        problems.append(Problem(str(caption_path), "caption file is empty", "using the folder name", "info"))
    return lines, encoding


def _problem_summary(problems: list[Problem]) -> "str":
    if not problems:
        return ""
    shown = "; ".join(str(p) for p in problems[:5])
    more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
    return f". Found: {shown}{more}"
