"""The live run panel: progress, loss chart, log tail, samples, Stop/Kill, outputs and "load settings".

It polls the run's files while its tab is shown (ui.tab_timers): each second while the run it draws is queued or
training, each five seconds when it has ended or there is none (a run started elsewhere shows within that), and
at once when the tab is shown. Each poll folds only new events (RunManager caches a summary per run) and sends a
component only when its fingerprint changed. With no run id it follows the running run, else the newest: a
reload re-attaches.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import gradio as gr

from trainer.config import load_config
from ui.runs import view
from ui.runs.status import tail_lines
from ui.tab_timers import tab_shown, tab_timer

_COUNTER = itertools.count()
PARTS = ("progress", "status", "loss", "log", "samples", "outputs", "stop", "kill", "resume", "load", "timer")
LIVE_S, IDLE_S = 1.0, 5.0  # poll intervals: a run queued or training / nothing that changes by itself


# A log box filled while its tab is hidden has no height, so no scroll reaches its end and no later change
# comes to scroll it: when any run log box appears or gets its size, show its last line.
FOLLOW_LOG_END = """() => {
  const hook = (t) => {
    if (t.dataset.followEnd) return;
    t.dataset.followEnd = '1';
    const end = () => { t.scrollTop = t.scrollHeight; };
    new ResizeObserver(end).observe(t);
    end();
  };
  const scan = () => document.querySelectorAll('.run-log textarea').forEach(hook);
  scan();
  new MutationObserver(scan).observe(document.body, {childList: true, subtree: true});
}"""


def build_run_monitor(ctx, run_id: gr.State, key: str | None = None, start: str | None = None) -> None:
    """Lay out the panel here and wire it to `run_id` (a gr.State holding a run id or None). `start`: the label of
    the tab's start button, which the empty panel names.

    Elements get ids `<key>-progress`, `<key>-loss`, `<key>-stop`, ... (key "run" for the first panel
    on the page, then "run1", "run2"; pass `key` for stable names) and the class `run-<part>`.
    """
    n = next(_COUNTER)
    key = key or ("run" if n == 0 else f"run{n}")
    w = _layout(ctx.t, key, start)
    flags = {"form": False}  # whether the Expert tab registered a form; known only after all tabs exist
    shown, prints = gr.State(None), gr.State({})
    w["timer"] = tab_timer(ctx, LIVE_S)
    outputs = [w[p] for p in PARTS] + [shown, prints]

    def tick(requested, prev):
        return _poll(ctx, requested, prev or {}, flags["form"], start)

    w["timer"].tick(tick, [run_id, prints], outputs, show_progress="hidden", queue=False)
    tab = tab_shown(ctx)
    for redraw in [run_id.change] + ([tab.select] if tab else []):  # every part at once, not at the next tick
        redraw(tick, [run_id, gr.State({})], outputs, show_progress="hidden", queue=False)
    mgr = ctx.shared["runs"]
    w["stop"].click(lambda r: r and mgr.stop(r), [shown], None, queue=False)
    w["kill"].click(lambda r: r and mgr.kill(r), [shown], None, queue=False)
    w["resume"].click(lambda r: _continue(ctx, r, w["status"], run_id), [shown], [w["status"], run_id])
    ctx.shared.setdefault("after_build", []).append(lambda: _wire_load(ctx, w["load"], shown, flags))
    if not ctx.shared.get("log_follows_end"):  # once per page, for every monitor's log box
        ctx.shared["log_follows_end"] = True
        ctx.shared["blocks"].load(None, None, None, js=FOLLOW_LOG_END)


def _layout(t, key: str, start: str | None) -> dict:
    w: dict = {}

    def ids(part):
        return {"elem_id": f"{key}-{part}", "elem_classes": [f"run-{part}"]}

    with gr.Group():
        w["progress"] = gr.HTML(view.progress_html(t, None, None, start), **ids("progress"))
    # Outside the groups: inside one a secondary button has the group's grey and reads as a heading.
    with gr.Row():
        w["stop"] = gr.Button(t("runs.stop"), variant="secondary", visible=False, **ids("stop"))
        w["kill"] = gr.Button(t("runs.kill"), variant="stop", visible=False, **ids("kill"))
        w["resume"] = gr.Button(visible=False, variant="primary", **ids("resume"))
        w["load"] = gr.Button(t("runs.load_settings"), visible=False, **ids("load"))
    with gr.Group():
        w["status"] = gr.Markdown("", **ids("status"))
    # Outside the group too: in one, Gradio's File keeps an inline border-style and gets a 3 px dark frame.
    w["outputs"] = gr.File(label=t("runs.outputs"), file_count="multiple", interactive=False,
                           visible=False, **ids("outputs"))
    with gr.Group():
        with gr.Row():
            # Fixed colours, named by the caption: Gradio's legend stays empty when the first value is empty.
            w["loss"] = gr.LinePlot(None, x="step", y="value", color="series", color_title="",
                                    color_map={"loss": "#3b82f6", "avg": "#f97316", "validation": "#16a34a"}, x_axis_format="d",
                                    caption=t("runs.loss_caption"), label=t("runs.loss"), y_title=t("runs.loss"), **ids("loss"))
            w["samples"] = gr.Gallery(label=t("runs.samples"), columns=4, height=360, **ids("samples"))
        w["log"] = gr.Textbox(label=t("runs.log"), lines=8, max_lines=8, interactive=False,
                              autoscroll=True, **ids("log"))
    # Gradio's autoscroll does not reach the end of a read-only box that is refilled: scroll it here.
    w["log"].change(None, None, None, js=f"() => {{ const t = document.querySelector('#{key}-log textarea');"
                    " if (t) requestAnimationFrame(() => { t.scrollTop = t.scrollHeight; }); }")
    return w


def resolve(mgr, requested: str | None) -> str | None:
    """The run to draw: the one asked for if it exists, else the running one, else the newest."""
    if requested and (mgr.runs_dir / requested / "config.toml").exists():
        return requested
    current = mgr.current()
    if current:
        return current
    queue = mgr.queued()
    runs = sorted((p.name for p in mgr.runs_dir.iterdir() if (p / "events.jsonl").exists()), reverse=True)
    return runs[0] if runs else (queue[0] if queue else None)


def _poll(ctx, requested, prev: dict, has_form: bool, start: str | None = None) -> list:
    mgr, t = ctx.shared["runs"], ctx.t
    run = resolve(mgr, requested)
    s = mgr.summary(run) if run else None
    run_dir = mgr.run_dir(run) if run else None
    ended = s is not None and s.status in view.ENDED
    log_path = run_dir / "train.log" if run_dir else None
    marks = {
        "progress": (run, s and s.status, s and s.step, s and s.message),
        "status": (run, s and s.status, ended),
        "loss": (run, s and len(s.losses), s and len(s.validation)),
        "log": (run, log_path.stat().st_size if log_path and log_path.exists() else -1),
        "samples": (run, s and len(s.samples)),
        "outputs": (run, ended, s and tuple(s.outputs)),
        "stop": (run, s and s.status), "kill": (run, s and s.status), "resume": (run, ended),
        "load": (run, ended, has_form),
        "timer": s is not None and not ended,
    }
    render = {
        "progress": lambda: view.progress_html(t, run, s, start),
        "status": lambda: view.status_md(t, s),
        "loss": lambda: view.loss_update(s),
        "log": lambda: tail_lines(log_path, 15) if log_path else "",
        "samples": lambda: view.sample_items(s),
        "outputs": lambda: _outputs_update(ctx, run_dir, s, ended),
        "stop": lambda: gr.update(visible=bool(s) and s.status in ("running", "queued")),
        "kill": lambda: gr.update(visible=bool(s) and s.status == "running"),
        "resume": lambda: _resume_update(t, run_dir, s),
        "load": lambda: gr.update(visible=ended and has_form),
        "timer": lambda: gr.Timer(LIVE_S if marks["timer"] else IDLE_S),
    }
    values = [render[p]() if marks[p] != prev.get(p) else gr.skip() for p in PARTS]
    return values + [run, marks]


def _resume_update(t, run_dir: Path | None, s):
    found = view.continuation(run_dir, s) if run_dir else None
    return gr.update(visible=found is not None, value=t("runs.continue_from", step=found[1]) if found else "")


def _continue(ctx, run: str | None, status: gr.Markdown, run_id: gr.State) -> dict:
    """Queue the settings of `run` again, resuming from its furthest saved state: the new run follows on."""
    from ui.forms.launch import queue_checked

    mgr = ctx.shared["runs"]
    found = view.continuation(mgr.run_dir(run), mgr.summary(run)) if run else None
    if found is None:  # its state went away since the button was drawn
        return {status: ctx.t("runs.continue_gone")}
    return queue_checked(ctx, found[0], {"msg": status, "run_id": run_id}, ctx.t("runs.continue_bad"))


def _outputs_update(ctx, run_dir: Path | None, s, ended: bool):
    if not ended or run_dir is None:
        return gr.update(visible=False, value=None)
    # Only files inside the workspace can be served (launch(allowed_paths=[workspace])).
    files = [p for p in view.output_files(run_dir, s) if Path(p).resolve().is_relative_to(ctx.workspace)]
    return gr.update(visible=bool(files), value=files or None)


def _wire_load(ctx, button: gr.Button, shown: gr.State, flags: dict) -> None:
    """Runs after every tab is built, when the Expert tab's form (if any) exists."""
    form, tabs = ctx.shared.get("expert_form"), ctx.shared.get("tabs")
    if form is None:
        return
    flags["form"] = True
    mgr = ctx.shared["runs"]

    def load(run):
        cfg = load_config(mgr.run_dir(run) / "config.toml")
        if cfg.save.resume:  # the state is the run's that saved it: a new run from the form starts afresh
            gr.Info(ctx.t("runs.resume_cleared", path=cfg.save.resume))
            cfg.save.resume = ""
        return list(form.values_for(cfg)) + ([gr.Tabs(selected="expert")] if tabs is not None else [])

    button.click(load, [shown], list(form.components) + ([tabs] if tabs is not None else []))
