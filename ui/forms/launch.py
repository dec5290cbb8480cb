"""Handing a checked config to the run manager, and placing the live run monitor, for both training tabs."""

from __future__ import annotations

import logging

import gradio as gr

from trainer.config import ConfigError, TrainConfig, check, effective_config, errors_of
from trainer.config.rules_input import paths_in_sandbox
from trainer.markdown import escape

log = logging.getLogger(__name__)


def enqueue(ctx, cfg: TrainConfig, name: str) -> tuple[str | None, str]:
    """(run id, message) after queuing `cfg`; (None, why not) when it could not be queued."""
    manager = ctx.shared.get("runs")  # looked up now, not at build time: the manager may be made after the tabs
    if manager is None:
        return None, ctx.t("forms.no_manager")
    try:
        # The run gets the effective config (custom TOML applied), so its config.toml is exactly what ran;
        # applying it again in the engine changes nothing.
        eff = effective_config(cfg)
        outside = paths_in_sandbox(eff)  # every tab checks already; the queue is the last gate
        if outside:
            raise ConfigError(outside)
        run_id = manager.enqueue(eff, name)
        manager.tick()  # start it now if nothing runs, rather than at the scheduler's next poll
    except (ConfigError, OSError, ValueError, RuntimeError) as exc:
        log.exception("enqueue failed")
        return None, ctx.t("forms.enqueue_failed", error=escape(exc))
    if manager.current() == run_id:
        return run_id, ctx.t("forms.started", run_id=run_id)
    queue = manager.queued()
    ahead = queue.index(run_id) + (manager.current() is not None) if run_id in queue else 0
    return run_id, ctx.t("forms.queued", run_id=run_id, ahead=ahead)


def place_monitor(ctx, run_state: gr.State, key: str, start: gr.Button | None = None) -> None:
    """The run monitor for the run id in `run_state`, where it is called; nothing if ui.runs is not there yet.

    `key` prefixes the monitor's element ids (f"{key}-progress", f"{key}-outputs", ...); the empty monitor names
    the `start` button by its label."""
    try:
        from ui.runs.monitor import build_run_monitor
    except ModuleNotFoundError as exc:
        if exc.name not in ("ui.runs", "ui.runs.monitor"):
            raise  # a real bug inside the monitor must not be hidden
        log.warning("ui.runs.monitor is not available; the training tabs show no live monitor")
        return
    build_run_monitor(ctx, run_state, key=key, start=start.value if start is not None else None)


def fields_overlay(paths, w: dict, data: dict, overlay: dict | None = None) -> dict:
    """An overlay of the schema fields `paths` (components in w[path]) as the user typed them, on `overlay`.
    Raises ConfigError naming the first field that holds a bad value."""
    from trainer.config.schema import params_by_path
    from ui.forms.widgets import from_widget

    overlay = overlay or {}
    for path in paths:
        value, bad = from_widget(params_by_path()[path], data[w[path]])
        if bad:
            raise ConfigError([bad])
        group, name = path.split(".")
        overlay.setdefault(group, {})[name] = value
    return overlay


def start_once(w: dict, queue, data: dict, busy: str = ""):
    """A Start button's callback (a generator): w["start"] is disabled while `queue(w, data)` checks and queues the
    run, so a double click queues one run, not two; `busy` shows meanwhile. An unexpected failure shows in w["msg"]
    (the server log has the traceback) and the button comes back either way."""
    from ui.messages import failure

    yield {w["start"]: gr.update(interactive=False), w["msg"]: busy}
    try:
        result = queue(w, data)
    except Exception as exc:
        log.exception("start failed")
        result = {w["msg"]: failure(w["ctx"].t, exc)}
    yield {**result, w["start"]: gr.update(interactive=True)}


def config_or_none(build, data: dict) -> TrainConfig | None:
    """`build(data)`, or None while a field holds a value that cannot be read (for the dataset doctor)."""
    try:
        return build(data)
    except ConfigError:
        return None


def plan_text(ctx, build, data: dict) -> str:
    """What a tab shows before Start: the problems of the config `build(data)` makes (or of the field it could not
    read), then the memory estimate."""
    from ui.components.memory_badge import memory_estimate_markdown
    from ui.forms.feedback import summary_text

    try:
        cfg = build(data)
    except ConfigError as exc:
        return summary_text(exc.findings, ctx.lang)
    problems = check(cfg, for_training=True)
    head = summary_text(problems, ctx.lang) + "\n\n" if problems else ""
    return head + memory_estimate_markdown(cfg, ctx.lang)


def build_and_queue(w: dict, build, data: dict, settings_bad: str) -> dict:
    """Make the config with `build(data)` and queue it checked (queue_checked); a field that cannot be read is
    named under `settings_bad`, as the tab's plan names it."""
    from ui.forms.feedback import summary_text

    ctx = w["ctx"]
    try:
        cfg = build(data)
    except ConfigError as exc:
        return {w["msg"]: settings_bad + "\n\n" + summary_text(exc.findings, ctx.lang)}
    return queue_checked(ctx, cfg, w, settings_bad)


def queue_checked(ctx, cfg: TrainConfig, w: dict, settings_bad: str) -> dict:
    """Check `cfg` for training and queue it: updates for w["msg"] (and w["run_id"] once queued)."""
    from ui.forms.feedback import summary_text

    findings = check(cfg, for_training=True)
    if errors_of(findings):
        return {w["msg"]: settings_bad + "\n\n" + summary_text(findings, ctx.lang)}
    run_id, message = enqueue(ctx, cfg, cfg.save.output_name)
    out = {w["msg"]: message}
    if run_id is not None:
        out[w["run_id"]] = run_id
    return out
