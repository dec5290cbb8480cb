"""The dataset doctor: read a training folder (never write to it) and list what will hurt training.

Scanning, captions, buckets and the epoch length come from trainer.data, the same code the engine trains
with, so what the doctor predicts is what training does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from trainer.data.buckets import cover_size, plan_buckets, steps_per_epoch
from trainer.data.captions import has_tag
from trainer.data.images import load_image_and_alpha
from trainer.data.problems import DatasetError
from trainer.data.scan import normalise_extension, parse_subset_name, scan_dataset, tag_frequency
from trainer.doctor.findings import DoctorFinding, finding
from trainer.doctor.hashing import NEAR_DISTANCE, duplicate_groups

# Losing more than this share of the picture to the centre crop usually cuts off part of the subject.
CROP_LIMIT = 0.15
# Images per concept: below TOO_FEW a LoRA copies its pictures (a warning); below USEFUL_MINIMUM it is usually
# stiffer than it could be (a note). The user's guide asks for 20-30 varied images.
TOO_FEW = 10
USEFUL_MINIMUM = 20
MOSTLY = 0.5  # "most images": more than this share
UTF8_NAMES = ("utf-8", "ascii")


@dataclass(frozen=True)
class FolderStat:
    name: str
    repeats: int
    images: int
    is_reg: bool


@dataclass(frozen=True)
class ImageStat:
    path: str
    width: int
    height: int
    bucket: tuple[int, int]
    scale: float  # > 1: enlarged to cover the bucket
    lost: float  # share of the scaled picture cut off by the crop


@dataclass
class DoctorReport:
    folder: str
    resolution: tuple[int, int]
    batch_size: int
    trigger: str = ""
    folders: list[FolderStat] = field(default_factory=list)
    images: list[ImageStat] = field(default_factory=list)
    tag_frequency: dict[str, int] = field(default_factory=dict)
    steps_per_epoch: int = 0
    findings: list[DoctorFinding] = field(default_factory=list)

    def by_code(self, code: str) -> list[DoctorFinding]:
        return [f for f in self.findings if f.code == code]

    @property
    def ok(self) -> bool:
        return not any(f.level == "error" for f in self.findings)

    def bucket_counts(self) -> dict[tuple[int, int], int]:
        return dict(sorted(Counter(i.bucket for i in self.images).items()))

    def as_dict(self) -> dict:
        return {
            "folder": self.folder, "resolution": list(self.resolution), "batch_size": self.batch_size,
            "trigger": self.trigger, "steps_per_epoch": self.steps_per_epoch,
            "folders": [vars(f) for f in self.folders],
            "images": [dict(vars(i), bucket=list(i.bucket)) for i in self.images],
            "buckets": {f"{w}x{h}": n for (w, h), n in self.bucket_counts().items()},
            "tag_frequency": self.tag_frequency, "findings": [f.as_dict() for f in self.findings],
        }


def check_dataset(folder, *, caption_ext: str = ".txt", trigger: str = "", resolution=(512, 512),
                  batch_size: int = 1, reg_dir=None, enable_bucket: bool = True, min_reso: int = 256,
                  max_reso: int = 1024, step: int = 64, no_upscale: bool = False,
                  near_distance: int = NEAR_DISTANCE,
                  progress: Callable[[int, int], None] | None = None) -> DoctorReport:
    """Examine `folder` (kohya layout) and return statistics and findings. Reads only; changes nothing."""
    report = DoctorReport(str(folder), tuple(resolution), max(1, int(batch_size)), trigger.strip())
    ext = normalise_extension(caption_ext)
    try:
        scan = scan_dataset(folder, caption_extension=ext, reg_dir=reg_dir or None)
    except DatasetError as exc:
        report.findings += _unprefixed_folders(Path(folder))
        report.findings.append(finding("dataset_unusable", str(folder), detail=str(exc), folder=str(folder)))
        return report
    report.findings += [f for f in map(_from_problem, scan.problems) if f is not None]
    report.folders = _folder_stats(scan.items)
    plan = plan_buckets(scan.items, resolution=report.resolution, min_reso=min_reso, max_reso=max_reso,
                        step=step, enable_bucket=enable_bucket, no_upscale=no_upscale)
    report.steps_per_epoch = steps_per_epoch([plan[i] for i in range(len(scan.items))],
                                             [it.repeats for it in scan.items], report.batch_size)
    report.images = [_image_stat(it, plan[i]) for i, it in enumerate(scan.items)]
    report.findings += _geometry_findings(report.images)
    report.findings += _advice_findings(report)
    report.findings += _caption_findings(scan.items, ext)
    report.findings += _content_findings([it.path for it in scan.items], near_distance, progress)
    report.tag_frequency = _overall_tags(tag_frequency(scan))
    if report.trigger:
        report.findings += _trigger_findings(scan.train_items, report.trigger)
    return report


def _unprefixed_folders(root: Path) -> list[DoctorFinding]:
    if not root.is_dir():
        return []
    return [finding("no_prefix", str(sub), name=sub.name) for sub in sorted(root.iterdir())
            if sub.is_dir() and not sub.name.startswith(".") and parse_subset_name(sub.name) is None]


def _from_problem(problem) -> DoctorFinding | None:
    """A scan problem as a finding. Empty captions are found from the items instead (they are not skipped)."""
    name, reason = Path(problem.file).name, problem.reason
    if "'<repeats>_' prefix" in reason:
        return finding("no_prefix", problem.file, name=name)
    if reason.startswith("repeats is 0"):
        parsed = parse_subset_name(name)
        return finding("zero_repeats", problem.file, name=name, token=parsed[1] if parsed else name)
    if reason.startswith("folder holds no images"):
        return finding("empty_folder", problem.file, name=name)
    if "directly in this folder are ignored" in reason:
        return finding("loose_images", problem.file, name=problem.file, count=reason.split()[0])
    if reason.startswith("unreadable image header"):
        return finding("unreadable", problem.file, reason=reason)
    if reason.startswith("cannot read caption"):
        return finding("caption_unreadable", problem.file, reason=reason)
    if reason == "caption file is empty":
        return None
    return finding("scan_other", problem.file, reason=f"{problem.file}: {reason}", hint=problem.hint)


def _folder_stats(items) -> list[FolderStat]:
    seen: dict[tuple[bool, str], list] = {}
    for it in items:
        seen.setdefault((it.is_reg, it.subset), []).append(it)
    return [FolderStat(subset, group[0].repeats if not is_reg else max(i.repeats for i in group), len(group), is_reg)
            for (is_reg, subset), group in sorted(seen.items())]


def _image_stat(item, bucket: tuple[int, int]) -> ImageStat:
    size = (item.width, item.height)
    scale = max(bucket[0] / size[0], bucket[1] / size[1])
    covered = cover_size(size, bucket)
    lost = 1.0 - (bucket[0] * bucket[1]) / (covered[0] * covered[1])
    return ImageStat(item.path, item.width, item.height, tuple(bucket), scale, max(0.0, lost))


def _geometry_findings(images: list[ImageStat]) -> list[DoctorFinding]:
    out = []
    for im in images:
        fields = dict(width=im.width, height=im.height, bw=im.bucket[0], bh=im.bucket[1])
        if im.scale > 1.0:
            out.append(finding("upscaled", im.path, scale=im.scale, **fields))
        if im.lost > CROP_LIMIT:
            out.append(finding("cropped", im.path, lost=im.lost * 100, **fields))
    return out


def _advice_findings(report: DoctorReport) -> list[DoctorFinding]:
    """The seed's advice, measured: enough images per concept, large enough, not all one shape."""
    out = []
    for f in report.folders:
        if f.is_reg:
            continue
        name = parse_subset_name(f.name)[1] if parse_subset_name(f.name) else f.name
        if f.images < TOO_FEW:
            out.append(finding("too_few_images", f.name, name=name, count=f.images, minimum=USEFUL_MINIMUM))
        elif f.images < USEFUL_MINIMUM:
            out.append(finding("few_images", f.name, name=name, count=f.images, minimum=USEFUL_MINIMUM))
        buckets = {im.bucket for im in report.images if Path(im.path).parent.name == f.name}
        if f.images >= USEFUL_MINIMUM and len(buckets) == 1:
            bw, bh = next(iter(buckets))
            out.append(finding("one_aspect", f.name, name=name, count=f.images, bw=bw, bh=bh))
    small = [im.path for im in report.images if im.scale > 1.0]
    if report.images and len(small) > MOSTLY * len(report.images):
        w, h = report.resolution
        lower = f"{max(64, w // 128 * 64)},{max(64, h // 128 * 64)}"
        out.append(finding("mostly_small", small, small=len(small), total=len(report.images), width=w, height=h,
                           lower=lower))
    return out


def _caption_findings(items, ext: str) -> list[DoctorFinding]:
    out = []
    for it in items:
        caption = str(Path(it.path).with_suffix(ext))
        if it.caption_encoding is None:
            if not Path(caption).is_file():  # an unreadable file was already reported by the scan
                out.append(finding("no_caption", it.path, ext=ext, token=it.class_token, stem=Path(it.path).stem))
            continue
        if not it.caption_lines:
            out.append(finding("empty_caption", caption, token=it.class_token))
        if it.caption_encoding == "utf-8-sig":
            out.append(finding("caption_bom", caption, encoding=it.caption_encoding))
        elif it.caption_encoding.lower() not in UTF8_NAMES:
            out.append(finding("caption_encoding", caption, encoding=it.caption_encoding))
    return out


def _content_findings(paths: list[str], near_distance: int, progress) -> list[DoctorFinding]:
    """Duplicates, undecodable pictures and, from the same decode, pictures with transparent parts."""
    transparent: list[str] = []

    def load(path):
        rgb, alpha = load_image_and_alpha(path)
        if alpha is not None and alpha.getextrema()[0] < 255:  # an alpha opaque everywhere is not transparency
            transparent.append(path)
        return rgb

    exact, near, failed = duplicate_groups(paths, load, near_distance, progress)
    out = [finding("unreadable", p, reason=reason) for p, reason in sorted(failed.items())]
    out += [finding("duplicate", g, count=len(g)) for g in exact]
    out += [finding("near_duplicate", g, count=len(g), distance=d) for g, d in near]
    if transparent:
        out.append(finding("transparent", sorted(transparent), count=len(transparent)))
    return out


def _overall_tags(per_folder: dict[str, dict[str, int]]) -> dict[str, int]:
    total: Counter = Counter()
    for tags in per_folder.values():
        total.update(tags)
    return dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))


def _trigger_findings(items, trigger: str) -> list[DoctorFinding]:
    missing = [it.path for it in items if not has_tag(it.caption, trigger)]
    return [finding("missing_trigger", missing, count=len(missing), trigger=trigger)] if missing else []
