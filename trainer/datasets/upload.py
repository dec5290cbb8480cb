"""Bring uploaded images (zips, or loose images with their caption files) into the workspace as a kohya dataset.

`plan_import` reads only: it checks every archive member (no absolute names, no `..`, no symlinks, no
oversized or bomb-like archives) and decides where each file goes. Anything refused raises ImportRefused
before a byte is written. `apply_import` writes into a hidden staging folder next to the target and moves it
into place, so a failure half-way leaves no half-dataset, and an existing folder is never overwritten.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from trainer.data.scan import IMAGE_EXTENSIONS, parse_subset_name
from trainer.datasets.listing import check_name, free_name

# Formats the image tools can convert to PNG after the import (the trainer itself reads IMAGE_EXTENSIONS).
CONVERTIBLE = (".gif", ".tif", ".tiff", ".heic", ".heif", ".avif")
UPLOAD_IMAGES = IMAGE_EXTENSIONS + CONVERTIBLE
CAPTION_EXTENSIONS = (".txt", ".caption")
# Files that archivers add and nobody wants in a dataset.
_JUNK = re.compile(r"(^|/)(__MACOSX|\.[^/]*|Thumbs\.db|desktop\.ini)(/|$)", re.IGNORECASE)
_DRIVE = re.compile(r"^[A-Za-z]:")


class ImportRefused(ValueError):
    """The upload is refused as a whole; the message says which file and why (en / zh)."""


@dataclass(frozen=True)
class Limits:
    """An archive larger than this (uncompressed) is refused; so is a member that expands more than
    `max_ratio` times (a zip bomb: a few KB that would fill the disk)."""

    max_bytes: int = 16 * 2**30
    max_files: int = 100_000
    max_ratio: float = 200.0


@dataclass(frozen=True)
class Member:
    name: str  # '/'-separated path inside the upload; a loose file's own name
    size: int
    archive: Path | None = None  # the zip holding it
    entry: str = ""  # its name inside that zip, as stored
    source: Path | None = None  # a loose file on disk


@dataclass
class ImportPlan:
    root: Path  # datasets/<name>
    merge: bool
    copies: list[tuple[Member, str]] = field(default_factory=list)  # (member, destination relative to root)
    skipped: list[str] = field(default_factory=list)  # members that are neither images nor matching captions

    @property
    def total_bytes(self) -> int:
        return sum(m.size for m, _ in self.copies)

    def folders(self) -> dict[str, tuple[int, int]]:
        """folder -> (images, captions), what the preview shows."""
        out: dict[str, list[int]] = {}
        for _, dest in self.copies:
            folder, _, name = dest.rpartition("/")
            counts = out.setdefault(folder, [0, 0])
            counts[Path(name).suffix.lower() in CAPTION_EXTENSIONS] += 1
        return {k: (v[0], v[1]) for k, v in sorted(out.items())}

    def preview(self) -> str:
        """The layout as a small tree, e.g. `datasets/zk/` then `  10_zk/  12 images, 12 captions`."""
        lines = [f"{self.root.parent.name}/{self.root.name}/" + ("  (merge)" if self.merge else "")]
        for folder, (images, captions) in self.folders().items():
            lines.append(f"  {folder}/  {images} images, {captions} captions")
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)}: " + ", ".join(self.skipped[:5])
                         + (" ..." if len(self.skipped) > 5 else ""))
        return "\n".join(lines)


def _refuse(en: str, zh: str) -> ImportRefused:
    return ImportRefused(f"{en} / {zh}")


def _clean_member_name(archive: str, name: str) -> str:
    """The member's name, '/'-separated; ImportRefused for absolute names and `..` (zip-slip)."""
    posix = name.replace("\\", "/")
    parts = PurePosixPath(posix).parts
    if posix.startswith("/") or _DRIVE.match(posix) or "\0" in posix:
        raise _refuse(f"{archive}: entry '{name}' has an absolute path; nothing was written. Re-create the zip "
                      "from inside the folder.", f"{archive}：条目“{name}”是绝对路径，未写入任何文件。请在文件夹内重新打包。")
    if ".." in parts:
        raise _refuse(f"{archive}: entry '{name}' points outside the archive ('..'); nothing was written.",
                      f"{archive}：条目“{name}”指向压缩包之外（'..'），未写入任何文件。")
    return "/".join(p for p in parts if p not in ("", "."))


def _zip_members(path: Path, limits: Limits) -> list[Member]:
    label = path.name
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise _refuse(f"{label} is not a readable zip file ({exc}).", f"{label} 不是可读取的 zip 文件（{exc}）。") from exc
    if len(infos) > limits.max_files:
        raise _refuse(f"{label} holds {len(infos)} entries, more than {limits.max_files}; split it.",
                      f"{label} 含 {len(infos)} 个条目，超过 {limits.max_files}；请拆分。")
    members, total = [], 0
    for info in infos:
        name = _clean_member_name(label, info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise _refuse(f"{label}: entry '{info.filename}' is a symbolic link; links are refused, nothing was written.",
                          f"{label}：条目“{info.filename}”是符号链接，不予接受，未写入任何文件。")
        if info.is_dir() or not name:
            continue
        total += info.file_size
        ratio = info.file_size / max(1, info.compress_size)
        if total > limits.max_bytes or (ratio > limits.max_ratio and info.file_size > 2**20):
            raise _refuse(f"{label} expands to more than {limits.max_bytes / 2**30:.1f} GiB (or one entry expands "
                          f"{ratio:.0f}x); refused, nothing was written.",
                          f"{label} 解压后超过 {limits.max_bytes / 2**30:.1f} GiB（或某条目膨胀 {ratio:.0f} 倍），"
                          "已拒绝，未写入任何文件。")
        members.append(Member(name, info.file_size, archive=path, entry=info.filename))
    return members


def gather(uploads: list[str | Path], limits: Limits = Limits()) -> list[Member]:
    """Every file in the uploads: zip members (checked) and loose files (by their own name)."""
    members: list[Member] = []
    for raw in uploads:
        path = Path(raw)
        if path.is_symlink():
            raise _refuse(f"{path.name} is a symbolic link; refused.", f"{path.name} 是符号链接，已拒绝。")
        if path.suffix.lower() == ".zip":
            members += _zip_members(path, limits)
        else:
            members.append(Member(path.name, path.stat().st_size, source=path))
    if sum(m.size for m in members) > limits.max_bytes:
        raise _refuse(f"the upload is larger than {limits.max_bytes / 2**30:.1f} GiB; refused.",
                      f"上传内容超过 {limits.max_bytes / 2**30:.1f} GiB，已拒绝。")
    return members


def _strip_common_top(names: list[str]) -> int:
    """How many leading folders all files share (a zip of one folder): they are dropped."""
    split = [n.split("/")[:-1] for n in names]
    depth = 0
    while split and all(len(s) > depth for s in split) and len({s[depth] for s in split}) == 1:
        depth += 1
    return depth


def _destinations(images: list[str], repeats: int, concept: str) -> dict[str, str]:
    """image name -> destination (relative to the dataset). An upload that already has `<repeats>_<name>/`
    folders keeps them; anything else goes into `<repeats>_<concept>/`, renaming clashes as `a-2.png`."""
    depth = _strip_common_top(images)
    rel = {n: "/".join(n.split("/")[depth:]) for n in images}
    kohya = all(r.count("/") == 1 and parse_subset_name(r.split("/")[0]) for r in rel.values())
    if kohya:
        return rel
    folder, out, taken = f"{repeats}_{concept}", {}, set()
    for name in sorted(images):
        base = free_name(Path("/nonexistent"), PurePosixPath(name).name, is_file=True, taken=taken)
        taken.add(base)
        out[name] = f"{folder}/{base}"
    return out


def plan_import(uploads: list[str | Path], datasets_dir: str | Path, name: str, repeats: int, concept: str,
                merge: bool = False, limits: Limits = Limits()) -> ImportPlan:
    """Decide where every uploaded file goes. Reads only; raises ImportRefused/ValueError naming the problem."""
    name = check_name(name, "Dataset name / 数据集名称")
    concept = check_name(concept, "Concept / 概念")
    if int(repeats) < 1:
        raise ValueError("Repeats must be 1 or more. / 重复次数必须至少为 1。")
    root = Path(datasets_dir) / name
    if root.exists() and not merge:
        suggestion = free_name(Path(datasets_dir), name)
        raise _refuse(f"dataset '{name}' already exists; choose another name (e.g. '{suggestion}') or tick "
                      "'merge into it'.", f"数据集“{name}”已存在；请换个名称（例如“{suggestion}”），或勾选“合并到已有数据集”。")
    members = gather(uploads, limits)
    by_name = {m.name: m for m in members}
    images = [n for n in by_name if Path(n).suffix.lower() in UPLOAD_IMAGES and not _JUNK.search(n)]
    if not images:
        raise _refuse("the upload holds no images (.png .jpg .jpeg .webp .bmp, or .gif/.tif to convert).",
                      "上传内容中没有图片（.png .jpg .jpeg .webp .bmp，或可转换的 .gif/.tif）。")
    plan = ImportPlan(root, merge)
    used: set[str] = set()
    for image, dest in _destinations(images, int(repeats), concept).items():
        dest = _free_in_target(root, dest) if merge else dest
        plan.copies.append((by_name[image], dest))
        used.add(image)
        stem = image.rsplit(".", 1)[0]
        for ext in CAPTION_EXTENSIONS:  # captions follow their image's new name
            if stem + ext in by_name:
                plan.copies.append((by_name[stem + ext], dest.rsplit(".", 1)[0] + ext))
                used.add(stem + ext)
    plan.skipped = sorted(n for n in by_name if n not in used)
    _check_space(Path(datasets_dir), plan.total_bytes)
    return plan


def _free_in_target(root: Path, dest: str) -> str:
    """On a merge, a file that exists is kept and the newcomer renamed (`a-2.png`), never overwritten."""
    folder, _, base = dest.rpartition("/")
    stem = base.rsplit(".", 1)[0]
    target = root / folder
    for ext in CAPTION_EXTENSIONS:  # an existing caption with that stem would be adopted by the new image
        if (target / (stem + ext)).exists():
            return f"{folder}/{free_name(target, base, is_file=True, taken={base})}"
    return f"{folder}/{free_name(target, base, is_file=True)}"


def _check_space(parent: Path, needed: int) -> None:
    probe = parent
    while not probe.exists():  # the datasets folder may not exist yet: ask its nearest existing ancestor
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed > free:
        raise _refuse(f"not enough disk space: the upload needs {needed / 2**20:.0f} MiB, {free / 2**20:.0f} MiB free.",
                      f"磁盘空间不足：需要 {needed / 2**20:.0f} MiB，剩余 {free / 2**20:.0f} MiB。")


def _copy_member(member: Member, target: Path, archives: dict[Path, zipfile.ZipFile]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if member.archive is None:
        shutil.copyfile(member.source, target)
        return
    if member.archive not in archives:  # each zip opened once, however many members it has
        archives[member.archive] = zipfile.ZipFile(member.archive)
    with archives[member.archive].open(member.entry) as src, open(target, "xb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def apply_import(plan: ImportPlan, progress: Callable[[int, int], None] | None = None) -> Path:
    """Write the planned files; returns the dataset folder. Staged in a hidden sibling folder first."""
    plan.root.parent.mkdir(parents=True, exist_ok=True)
    staging = plan.root.parent / f".incoming-{uuid.uuid4().hex[:8]}"
    done, total = 0, plan.total_bytes
    archives: dict[Path, zipfile.ZipFile] = {}
    try:
        for member, dest in plan.copies:
            _copy_member(member, staging / dest, archives)
            done += member.size
            if progress:
                progress(done, total)
        if not plan.merge:
            if plan.root.exists():  # appeared since the plan was made: keep it, refuse ours
                raise _refuse(f"'{plan.root.name}' appeared meanwhile; nothing was changed.",
                              f"“{plan.root.name}”在此期间被创建；未做任何更改。")
            os.rename(staging, plan.root)
            return plan.root
        for _, dest in plan.copies:
            target = plan.root / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                target = target.with_name(free_name(target.parent, target.name, is_file=True))
            os.rename(staging / dest, target)
        return plan.root
    finally:
        for zf in archives.values():
            zf.close()
        shutil.rmtree(staging, ignore_errors=True)
