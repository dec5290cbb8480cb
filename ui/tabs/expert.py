"""Expert tab: every schema parameter in collapsible sections, presets, TOML import/export, Validate and Start.

The form is generated (ui.forms); this module only adds the tab's buttons and wires them. Every callback
takes the dict of its inputs and returns a dict of updates.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from trainer import sandbox
from trainer.config import (
    ConfigError,
    TrainConfig,
    check,
    dump_config,
    effective_config,
    errors_of,
    load_config,
)
from trainer.config.presets import apply_presets, list_presets
from trainer.config.schema import params_by_path
from trainer.earlier_files import move_aside
from trainer.markdown import escape
from trainer.textio import atomic_write_text, inside
from ui.components.dataset_picker import field_picker
from ui.components.doctor_panel import build_doctor_panel
from ui.components.memory_badge import memory_estimate_markdown
from ui.forms import build_form
from ui.forms.feedback import summary_text
from ui.forms.form import FAMILY_PATH
from ui.forms.launch import enqueue, place_monitor, start_once

TITLE = "expert.title"
PRESET_KINDS = ("expert", "memory", "speed")


def available() -> bool:
    return True


def build(ctx) -> None:
    t = ctx.t
    gr.Markdown(t("expert.intro"))
    w: dict = {"ctx": ctx}
    _top_bar(w, ctx)
    form = build_form(ctx.lang, beside=lambda p, box: field_picker(ctx, p, box, "expert"))
    w["form"] = form
    ctx.shared["expert_form"] = form  # the Runs panel loads a past run's settings into it
    f = form.by_path
    build_doctor_panel(ctx, f["dataset.train_data_dir"], f["caption.caption_extension"], f["caption.trigger_word"],
                       f["training.train_batch_size"], f["dataset.resolution"], elem_prefix="expert-doctor",
                       config_fn=lambda d: form.to_config(d)[0], config_inputs=form.components)
    with gr.Row():
        w["validate"] = gr.Button(t("expert.validate"), elem_id="expert-validate")
        w["start"] = gr.Button(t("expert.start"), variant="primary", elem_id="expert-start")
        w["export"] = gr.Button(t("expert.export"), elem_id="expert-export")
    w["msg"] = gr.Markdown("", elem_id="expert-msg")
    w["memory"] = gr.Markdown("", elem_id="expert-memory")
    form.summary.render()
    with gr.Accordion(t("expert.toml"), open=False):
        w["toml"] = gr.Code("", language=None, interactive=False, max_lines=30, elem_id="expert-toml")
        w["download"] = gr.File(label=t("expert.download"), interactive=False, elem_id="expert-download")
    w["run_id"] = gr.State(None)
    place_monitor(ctx, w["run_id"], key="expert-run", start=w["start"])
    _wire(w)


def preset_choices(lang: str, t) -> list[tuple[str, str]]:
    """Expert starting points for families the schema offers, then GPU-memory tiers."""
    family = params_by_path().get(FAMILY_PATH)
    families = set(family.available_choices()) if family else set()
    out = []
    for kind in PRESET_KINDS:
        for p in list_presets(kind):
            if p.family is None or p.family in families:
                out.append((f"{p.label(lang)} · {t('expert.kind_' + kind)}", p.name))
    return out


def _top_bar(w: dict, ctx) -> None:
    t = ctx.t
    with gr.Row():
        w["preset"] = gr.Dropdown(choices=preset_choices(ctx.lang, t), value=None, label=t("expert.preset"),
                                  info=t("expert.preset_info"), scale=3, elem_id="expert-preset")
        w["apply_preset"] = gr.Button(t("expert.load_preset"), scale=1, elem_id="expert-apply-preset",
                                      size="md")
    with gr.Row():
        w["import_path"] = gr.Textbox(label=t("expert.import_path"), info=t("expert.import_path_info"), scale=4,
                                      elem_id="expert-import-path")
        w["import"] = gr.Button(t("expert.import"), scale=1, elem_id="expert-import", size="md")
        w["upload"] = gr.File(label=t("expert.upload"), file_types=[".toml", ".json"], type="filepath", scale=2,
                              height=120, elem_id="expert-upload")
    w["import_msg"] = gr.Markdown("", elem_id="expert-import-msg")


def _wire(w: dict) -> None:
    form = w["form"]
    fields = set(form.components)
    load_outputs = [*form.components, *form.feedback_outputs, w["import_msg"]]
    w["apply_preset"].click(lambda d: _apply_preset(w, d), inputs=fields | {w["preset"]}, outputs=load_outputs)
    w["import"].click(lambda d: _import(w, d[w["import_path"]], typed=True), inputs={w["import_path"]},
                      outputs=load_outputs)
    w["upload"].upload(lambda d: _import(w, d[w["upload"]]), inputs={w["upload"]}, outputs=load_outputs)
    checked = [*form.feedback_outputs, w["msg"], w["toml"], w["memory"]]
    w["validate"].click(lambda d: _validate(w, d), inputs=fields, outputs=checked)
    w["export"].click(lambda d: _export(w, d), inputs=fields, outputs=[*checked, w["download"]])
    w["start"].click(lambda d: (yield from _start_once(w, d)), inputs=fields,
                     outputs=[*checked, w["run_id"], w["start"]])


# ---- loading settings into the form -----------------------------------------------------------------
def _show_config(w: dict, cfg: TrainConfig, note: str) -> dict:
    """Fill the form with `cfg`; mark its problems next to the fields, and say what could not be shown."""
    form = w["form"]
    dropped = form.unsupported(cfg)
    out = form.updates_for(cfg)
    out.update(form.feedback(dropped + check(cfg, for_training=False)))
    out[w["import_msg"]] = note
    return out


def _apply_preset(w: dict, data: dict) -> dict:
    ctx, form = w["ctx"], w["form"]
    name = data[w["preset"]]
    if not name:
        return {w["import_msg"]: ctx.t("expert.preset_none")}
    base, findings = form.to_config(data)
    try:
        cfg = apply_presets([name], base)  # None base: the schema defaults
    except ConfigError as exc:
        return {**form.feedback(exc.findings), w["import_msg"]: summary_text(exc.findings, ctx.lang)}
    title = next((label for label, value in preset_choices(ctx.lang, ctx.t) if value == name), name)
    note = ctx.t("expert.preset_applied", title=title)
    if base is None:
        note += "\n\n" + ctx.t("expert.form_broken")
    return _show_config(w, cfg, note)


def _import(w: dict, path: str | None, typed: bool = False) -> dict:
    """Load a TOML into the form. `typed`: a path the user typed (sandboxed on a remote server), not an upload."""
    ctx = w["ctx"]
    path = (path or "").strip()
    if not path:
        return {w["import_msg"]: ctx.t("expert.import_empty")}
    filled: list = []  # an sd-scripts file's omitted settings that took sd-scripts' defaults
    changed: list = []  # warnings about values of an sd-scripts file the import had to change
    try:
        cfg = load_config(sandbox.allowed(path, ctx.t("expert.import_path")) if typed else Path(path), filled=filled,
                          warnings=changed)
    except ConfigError as exc:
        head = ctx.t("expert.import_failed", path=f"`{path}`")
        return {w["import_msg"]: head + "\n\n" + summary_text(exc.findings, ctx.lang)}
    except ValueError as exc:  # sandbox.PathNotAllowed: outside the folders a remote server may use
        return {w["import_msg"]: ctx.t("expert.import_failed", path=f"`{path}`") + "\n\n" + escape(exc)}
    findings = check(cfg, for_training=False)
    if w["form"].unsupported(cfg):  # the form would show other values than the file's: say so, change nothing
        head = ctx.t("expert.not_representable", path=f"`{path}`")
        return {w["import_msg"]: head + "\n\n" + summary_text(findings, ctx.lang)}
    note = ctx.t("expert.imported", path=f"`{path}`")
    if changed:
        note += "\n\n" + summary_text(changed, ctx.lang)
    if filled:
        note += "\n\n" + ctx.t("expert.imported_filled", n=len(filled)) + "\n" + "\n".join(
            f"- {escape(f.text())}" for f in filled)
    return _show_config(w, cfg, note)


# ---- checking, exporting and starting ---------------------------------------------------------------
def _checked(w: dict, data: dict, for_training: bool) -> tuple[TrainConfig | None, list, dict]:
    """(config or None, findings, updates showing them and the effective TOML)."""
    form = w["form"]
    cfg, findings = form.to_config(data, for_training=for_training)
    out = form.feedback(findings)
    if cfg is not None:  # shown beside Start: will this fit on the GPU?
        out[w["memory"]] = memory_estimate_markdown(cfg, w["ctx"].lang)
    try:
        out[w["toml"]] = dump_config(effective_config(cfg)) if cfg is not None else ""
    except ConfigError:
        out[w["toml"]] = dump_config(cfg)  # the custom TOML is broken; its error is already shown
    return cfg, findings, out


def _validate(w: dict, data: dict) -> dict:
    cfg, findings, out = _checked(w, data, for_training=True)
    ok = cfg is not None and not errors_of(findings)
    out[w["msg"]] = w["ctx"].t("expert.valid") if ok else w["ctx"].t("expert.invalid")
    return out


def _export(w: dict, data: dict) -> dict:
    ctx = w["ctx"]
    cfg, findings, out = _checked(w, data, for_training=False)
    if cfg is None or errors_of(findings):  # e.g. output_name "../../x": nothing is written
        out[w["msg"]] = summary_text(findings, ctx.lang)
        return out
    folder = ctx.outputs_dir / "configs"
    target = inside(folder, f"{cfg.save.output_name or 'danlu'}.toml")
    moved = move_aside(target)  # an earlier export under this name (other settings) stays as a backup
    atomic_write_text(target, dump_config(cfg))  # the form as it is; custom TOML kept as text
    out[w["download"]] = str(target)
    out[w["msg"]] = ctx.t("expert.exported", path=f"`{target}`") + (
        " " + ctx.t("expert.export_kept", path=f"`{moved[0].name}`") if moved else "")
    return out


def _start_once(w: dict, data: dict):
    yield from start_once(w, _start, data)


def _start(w: dict, data: dict) -> dict:
    ctx = w["ctx"]
    cfg, findings, out = _checked(w, data, for_training=True)
    if cfg is None or errors_of(findings):
        out[w["msg"]] = ctx.t("expert.not_started")
        return out
    run_id, message = enqueue(ctx, cfg, cfg.save.output_name)
    out[w["msg"]] = message
    if run_id is not None:
        out[w["run_id"]] = run_id
    return out
