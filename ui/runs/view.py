"""Pure renderers for the run monitor: summary -> HTML, chart data, file lists. No Gradio events here."""

from __future__ import annotations

import html
from pathlib import Path

import gradio as gr
import pandas as pd

from trainer.config.schema import params_by_path
from trainer.events import RunSummary
from trainer.markdown import escape

MIN_X_SPAN = 20  # steps: a shorter x axis gets fractional ticks (1.5, 2.5) at the chart's width
MAX_POINTS = 400  # the chart is redrawn each poll: thin long runs to keep it light
ENDED = ("finished", "stopped", "failed", "crashed", "killed")


def fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def status_label(t, status: str) -> str:
    return t(f"runs.status_{status}") if status else ""


def progress_html(t, run_id: str | None, s: RunSummary | None, start: str | None = None) -> str:
    """The progress block; with no run, what to press: `start`, the label of the tab's own start button, or (a
    panel with no button of its own, the Runs tab) the tabs that start runs."""
    if not run_id or s is None:
        empty = t("runs.no_run_here", start=start) if start else t("runs.no_run")
        return f"<div class='danlu-run-empty'>{html.escape(empty)}</div>"
    frac = s.step / s.total if s.total else 0.0
    it_s = f"{s.it_s:.2f}" if s.it_s else "—"
    loss = f"{s.loss:.4f}" if s.loss is not None else "—"
    detail = t("runs.progress_detail", step=s.step, total=s.total or "?", epoch=s.epoch, epochs=s.epochs or "?",
               it_s=it_s, eta=fmt_eta(None if ended_early(s) else s.eta_s), loss=loss)  # (an ETA it never takes)
    note = html.escape(s.message) if s.status == "running" and s.message and not s.step else ""
    return (
        f"<div data-run='{html.escape(run_id)}' data-status='{s.status}' data-step='{s.step}'>"
        f"<div><b>{html.escape(run_id)}</b> — {html.escape(status_label(t, s.status))}</div>"
        "<div style='background:var(--neutral-200,#ddd);border-radius:6px;height:14px;margin:6px 0'>"
        f"<div style='width:{frac * 100:.1f}%;height:14px;border-radius:6px;"
        "background:var(--color-accent,#f97316)'></div></div>"
        f"<div>{html.escape(detail)}</div><div><small>{note}</small></div>{fit_html(t, s)}</div>"
    )


def fit_html(t, s: RunSummary) -> str:
    """The over/underfitting warning in the UI's language, or nothing."""
    f = s.fit
    if not f:
        return ""
    name = Path(f["best_path"]).name if f.get("best_path") else t("runs.fit_no_file")
    key = "runs.overfit_stopped" if f.get("early_stop") and f["fit"] == "overfit" else f"runs.{f['fit']}"
    text = t(key, file=name, epoch=f.get("best_epoch", "?"), loss=f"{f.get('best_loss', 0.0):.4f}")
    return f"<div class='danlu-fit' data-fit='{html.escape(f['fit'])}'>⚠ {html.escape(text)}</div>"


def status_md(t, s: RunSummary | None) -> str:
    """The verdict once a run ended: what happened and, for failures, the engine's message and hint."""
    if s is None or s.status not in ENDED:
        return ""
    lines = [f"**{status_label(t, s.status)}**"]
    if s.status in ("failed", "crashed", "killed") and s.message:
        lines.append(f"```\n{s.message.strip()}\n```")
    if s.hint:
        lines.append(f"{t('runs.hint')}: {escape(s.hint)}")
    for warning in s.warnings[-3:]:
        lines.append(f"- ⚠ {t('forms.warning')} {escape(warning)}")
    return "\n\n".join(lines)


def loss_frame(s: RunSummary | None) -> pd.DataFrame | None:
    """The loss chart's data, or None before the first step: Gradio 6's LinePlot keeps the chart spec of the
    first data it got, so an empty frame first would leave later lines undrawn."""
    rows = (s.losses if s else [])
    if not rows:
        return None
    stride = max(1, len(rows) // MAX_POINTS)
    rows = rows[::stride] + ([rows[-1]] if rows and (len(rows) - 1) % stride else [])
    data = [(st, "loss", loss) for st, loss, _ in rows] + [(st, "avg", avg) for st, _, avg in rows]
    data += [(st, "validation", loss) for st, loss in s.validation]  # few points: never thinned
    frame = pd.DataFrame(data, columns=["step", "series", "value"])
    # Typed: the plot picks quantitative vs nominal axes from the column dtypes.
    return frame.astype({"step": "int64", "series": "str", "value": "float64"})


def loss_update(s: RunSummary | None):
    """The loss chart's data with an x axis from step 0 to the run's end (at least MIN_X_SPAN steps, so the
    ticks are whole steps). Sending x_lim also makes Gradio rebuild the chart spec, which otherwise keeps
    the (empty) legend of the first, empty value."""
    frame = loss_frame(s)
    if frame is None:
        return None
    end = max(s.total or 0, int(frame["step"].max()), MIN_X_SPAN)
    return gr.update(value=frame, x_lim=[0, end])


def sample_items(s: RunSummary | None, limit: int = 24) -> list[tuple[str, str]]:
    items = []
    for event in (s.samples if s else [])[-limit:]:
        path = event.get("path", "")
        if path and Path(path).exists():
            items.append((path, f"{event.get('step', '')}: {event.get('prompt', '')}"[:80]))
    return items


OUTPUT_SUFFIXES = tuple(f".{c}" for c in params_by_path()["save.save_model_as"].choices)


def output_files(run_dir: Path, s: RunSummary | None) -> list[str]:
    """LoRA files the engine reported, else whatever is in output/ (a crashed run may have saved some)."""
    paths = [p for p in (s.outputs if s else []) if Path(p).is_file()]
    if not paths and (run_dir / "output").is_dir():
        paths = [str(p) for p in sorted((run_dir / "output").iterdir()) if p.suffix in OUTPUT_SUFFIXES]
    return paths


def ended_early(s: RunSummary | None) -> bool:
    """Stopped, killed, failed or crashed: ended before its last step."""
    return s is not None and s.status in ENDED and s.status != "finished"


def continuation(run_dir: Path, s: RunSummary | None):
    """(the run's settings with save.resume at its furthest own state, the step that state is at) for a run that
    ended early; None when it did not or saved no state."""
    from trainer.config import ConfigError, load_config
    from trainer.run_outputs import latest_state, out_dir_of

    if not ended_early(s):
        return None
    try:
        cfg = load_config(run_dir / "config.toml")
    except (ConfigError, OSError):
        return None
    found = latest_state(out_dir_of(cfg, run_dir), cfg.save.output_name, (run_dir / "config.toml").stat().st_mtime)
    if found is None or continued_later(run_dir, found[0]):
        return None
    cfg.save.resume = str(found[0])
    # The state holds the position: a later start the run was given (initial_step) would be refused beside it.
    cfg.training.initial_step = cfg.training.initial_epoch = None
    cfg.training.skip_until_initial_step = False
    return cfg, found[1]


def continued_later(run_dir: Path, state: Path) -> bool:
    """Whether a run queued after `run_dir` (run ids sort by time) resumes from `state`: it was continued already."""
    import tomllib

    for later in sorted(p for p in run_dir.parent.iterdir() if p.name > run_dir.name):
        try:
            resume = tomllib.loads((later / "config.toml").read_text(encoding="utf-8")).get("save", {}).get("resume")
        except (OSError, ValueError):  # a folder still being written, or not a run
            continue
        if resume and Path(resume) == state:
            return True
    return False


def history_rows(t, runs: list[tuple[str, RunSummary]]) -> list[list]:
    rows = []
    for run_id, s in runs:
        loss = round(s.avg_loss if s.avg_loss is not None else (s.loss or 0.0), 5) if s.losses else None
        outputs = ", ".join(Path(p).name for p in s.outputs)
        rows.append([run_id, status_label(t, s.status), f"{s.step}/{s.total or '?'}", loss, outputs])
    return rows
