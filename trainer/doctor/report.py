"""The doctor's report as plain text (CLI) or Markdown (UI panel), in English or Chinese."""

from __future__ import annotations

from pathlib import Path

from trainer.doctor.check import DoctorReport
from trainer.markdown import escape

LEVEL_MARK = {"error": "✖", "warning": "⚠", "info": "ℹ"}
LABELS = {
    "en": {"folders": "Folders", "images": "images", "repeats": "repeats", "reg": "regularisation",
           "steps": "Steps per epoch (batch {batch})", "buckets": "Buckets at {w}x{h}", "tags": "Most frequent tags",
           "findings": "Findings", "none": "No problems found.", "fix": "Fix", "more": "… and {n} more",
           "error": "Error:", "warning": "Warning:", "info": "Note:"},
    "zh": {"folders": "文件夹", "images": "张图片", "repeats": "重复", "reg": "正则化",
           "steps": "每轮步数（批次 {batch}）", "buckets": "{w}x{h} 下的分桶", "tags": "最常见的标签",
           "findings": "检查结果", "none": "没有发现问题。", "fix": "处理办法", "more": "… 另有 {n} 项",
           "error": "错误：", "warning": "警告：", "info": "提示："},
}
MAX_FILES = 8  # per finding; a folder with 500 uncaptioned images should not drown the page
TOP_TAGS = 20


def _files(files: tuple[str, ...], root: str, lang: str) -> list[str]:
    def short(p: str) -> str:
        try:
            return str(Path(p).relative_to(root))
        except ValueError:
            return p

    shown = [short(f) for f in files[:MAX_FILES]]
    if len(files) > MAX_FILES:
        shown.append(LABELS[lang]["more"].format(n=len(files) - MAX_FILES))
    return shown


def summary_lines(report: DoctorReport, lang: str = "en") -> list[str]:
    lab = LABELS[lang]
    lines = [f"{lab['folders']}:"]
    for f in report.folders:
        reg = f" ({lab['reg']})" if f.is_reg else ""
        lines.append(f"  {f.name}{reg}: {f.images} {lab['images']} × {f.repeats} {lab['repeats']}")
    lines.append(f"{lab['steps'].format(batch=report.batch_size)}: {report.steps_per_epoch}")
    w, h = report.resolution
    buckets = ", ".join(f"{bw}x{bh}: {n}" for (bw, bh), n in report.bucket_counts().items())
    lines.append(f"{lab['buckets'].format(w=w, h=h)}: {buckets}")
    tags = ", ".join(f"{t} ({n})" for t, n in list(report.tag_frequency.items())[:TOP_TAGS])
    lines.append(f"{lab['tags']}: {tags}")
    return lines


def render_text(report: DoctorReport, lang: str = "en") -> str:
    lab = LABELS[lang]
    lines = summary_lines(report, lang) + ["", f"{lab['findings']}:"]
    if not report.findings:
        lines.append("  " + lab["none"])
    for f in report.findings:
        lines.append(f"{LEVEL_MARK[f.level]} [{f.code}] {f.message(lang)}")
        lines += [f"    {p}" for p in _files(f.files, report.folder, lang)]
        lines.append(f"    → {f.fix(lang)}")
    return "\n".join(lines)


def render_markdown(report: DoctorReport, lang: str = "en") -> str:
    lab = LABELS[lang]
    head = [escape(ln) for ln in summary_lines(report, lang)]  # folder names and tags are the user's text
    out = [f"**{head[0]}**"] + [f"- {ln.strip()}" for ln in head[1:len(report.folders) + 1]]
    out += [f"\n**{ln.split(':', 1)[0]}:**{ln.split(':', 1)[1]}" for ln in head[len(report.folders) + 1:]]
    out.append(f"\n### {lab['findings']} ({len(report.findings)})")
    if not report.findings:
        out.append(lab["none"])
    for f in report.findings:
        files = ", ".join(f"`{p}`" for p in _files(f.files, report.folder, lang))
        # the word as well as the mark: without an emoji font the mark is an empty box
        out.append(f"- {LEVEL_MARK[f.level]} {lab[f.level]} **{escape(f.message(lang))}** {files}  \n  {lab['fix']}: "
                   f"{escape(f.fix(lang))}")
    return "\n".join(out)
