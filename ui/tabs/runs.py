"""Runs tab: past runs (status, steps, final loss, outputs), one run's live monitor and config, the queue."""

from __future__ import annotations

import gradio as gr

from ui.runs import view
from ui.runs.monitor import build_run_monitor, resolve
from ui.tab_timers import on_shown, tab_timer
from ui.tabs.runs_delete import build_delete, wire_delete

TITLE = "runs.title"


def available() -> bool:
    return True


def build(ctx) -> None:
    t, mgr = ctx.t, ctx.shared["runs"]
    with gr.Row():
        gr.Markdown(f"### {t('runs.history')}")
        refresh = gr.Button(t("runs.refresh"), scale=0, elem_id="runs-refresh")
    headers = [t(f"runs.col_{c}") for c in ("id", "status", "steps", "loss", "outputs")]
    table = gr.Dataframe(headers=headers, value=view.history_rows(t, mgr.list_runs()), interactive=False,
                         wrap=True, max_height=320, elem_id="runs-history")
    picked = gr.Dropdown(choices=_run_ids(mgr), value=None, label=t("runs.select_run"),
                         info=t("runs.select_info"), allow_custom_value=False, elem_id="runs-select")
    delete = build_delete(t)
    selected = gr.State(None)
    build_run_monitor(ctx, selected, key="runs")
    config = gr.Code(language=None, label=t("runs.config"), interactive=False, max_lines=30, elem_id="runs-config")
    queue_md, queue_pick, remove = _queue_panel(t, mgr)

    def refresh_all():
        queue = mgr.queued()
        return (view.history_rows(t, mgr.list_runs()), gr.update(choices=_run_ids(mgr)),
                _queue_text(t, queue), gr.update(choices=queue, value=None))

    lists = [table, picked, queue_md, queue_pick]
    refresh.click(refresh_all, None, lists, queue=False)

    def on_show(chosen):
        """The lists as they are now (the build-time ones are stale, the timer's up to 5 s). The picked run stays;
        with none picked (or one since removed) the run the monitor follows is picked, so its config shows too."""
        rows, _, queue_text, queue_update = refresh_all()
        ids = _run_ids(mgr)
        pick = chosen if chosen in ids else resolve(mgr, None)
        return rows, gr.update(choices=ids, value=pick), queue_text, queue_update

    tab_timer(ctx, 5.0).tick(refresh_all, None, lists, show_progress="hidden", queue=False)
    on_shown(ctx, on_show, [picked], lists, show_progress="hidden", queue=False)
    table.select(_row_id, None, picked, queue=False)
    picked.change(lambda r: (r, _config_text(mgr, r)), [picked], [selected, config], queue=False)

    def remove_run(run_id):
        if run_id:
            mgr.remove_from_queue(run_id)
            gr.Info(t("runs.removed", run=run_id))
        return refresh_all()

    remove.click(remove_run, [queue_pick], lists, queue=False)
    wire_delete(t, mgr, delete, picked, lists, on_show)


def _queue_panel(t, mgr):
    gr.Markdown(f"### {t('runs.queue')}")
    queue = mgr.queued()
    md = gr.Markdown(_queue_text(t, queue), elem_id="runs-queue")
    with gr.Row():
        pick = gr.Dropdown(choices=queue, value=None, label=t("runs.queue_pick"), elem_id="runs-queue-pick")
        remove = gr.Button(t("runs.remove"), variant="stop", scale=0, elem_id="runs-queue-remove")
    return md, pick, remove


def _queue_text(t, queue: list[str]) -> str:
    return "\n".join(f"{i}. `{r}`" for i, r in enumerate(queue, 1)) if queue else t("runs.queue_empty")


def _run_ids(mgr) -> list[str]:
    return [run_id for run_id, _ in mgr.list_runs()]


def _row_id(evt: gr.SelectData):
    # The first column holds the run id; row_value is the whole clicked row.
    row = getattr(evt, "row_value", None)
    return row[0] if row else gr.skip()


def _config_text(mgr, run_id: str | None) -> str:
    if not run_id:
        return ""
    try:
        return (mgr.run_dir(run_id) / "config.toml").read_text(encoding="utf-8")
    except (OSError, ValueError):
        return ""
