"""Dataset doctor: statistics and problems of a training folder, each with what to do. Reads only.

`check_dataset(folder, ...) -> DoctorReport`; `render_text` / `render_markdown` for people; findings are
named by code (see findings.CATALOGUE).
"""

from trainer.doctor.check import CROP_LIMIT, DoctorReport, FolderStat, ImageStat, check_dataset
from trainer.doctor.findings import CATALOGUE, DoctorFinding
from trainer.doctor.hashing import NEAR_DISTANCE
from trainer.doctor.report import render_markdown, render_text

__all__ = [
    "CATALOGUE", "CROP_LIMIT", "NEAR_DISTANCE", "DoctorFinding", "DoctorReport", "FolderStat", "ImageStat",
    "check_dataset", "render_markdown", "render_text",
]
