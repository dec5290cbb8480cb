"""Novice tab (SD1.5): a preset, a GPU-memory tier, a base model, a dataset folder, a few names, one Start.

Everything else comes from presets (trainer.config.presets). The few fields shown are schema parameters,
so their labels and help come from the schema; the plan above the button is computed by trainer.data.
"""

from __future__ import annotations

import re
from pathlib import Path

import gradio as gr

from trainer import sandbox
from trainer.config import ConfigError, TrainConfig, apply_overlay
from trainer.config.presets import apply_presets, list_presets
from trainer.config.schema import params_by_path
from trainer.data.captions import preview_prompts
from trainer.datasets.listing import MODEL_SUFFIXES, list_models
from trainer.markdown import escape
from trainer.textio import plain_name
from ui.components.dataset_picker import MODEL_LISTS, field_with_list
from ui.components.doctor_panel import build_doctor_panel
from ui.components.memory_badge import memory_estimate_markdown
from ui.forms import label_of
from ui.forms.feedback import summary_text
from ui.forms.launch import config_or_none, fields_overlay, place_monitor, queue_checked, start_once
from ui.forms.plan import plan_run
from ui.tab_timers import on_shown

TITLE = "novice.title"
ROOT = Path(__file__).resolve().parents[2]
DEMO_DATASET = ROOT / "assets" / "demo_dataset"
DEMO = "danlu-demo"  # dropdown value of the bundled demo model (built on first Start)
SD15_HUB = "stable-diffusion-v1-5/stable-diffusion-v1-5"
MODEL = "model.base_model"
# The schema parameters this tab shows besides the base model; their values override the presets.
EPOCHS, NAME = "training.max_train_epochs", "save.output_name"
FIELDS = ("dataset.train_data_dir", "caption.trigger_word", NAME, EPOCHS)
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def available() -> bool:
    return True


def build(ctx) -> None:
    t = ctx.t
    gr.Markdown(t("novice.intro"))
    w: dict = {"ctx": ctx}
    novice = list_presets("novice")
    # Novice trains SD1.5: the SDXL memory tiers are offered in the Expert tab.
    memory = sorted((p for p in list_presets("memory") if p.family in (None, "sd15")), key=_gigabytes)
    with gr.Row():
        w["preset"] = gr.Radio([(p.label(ctx.lang), p.name) for p in novice], value=novice[0].name,
                               label=t("novice.preset"), elem_id="novice-preset", scale=2)
        w["memory"] = gr.Dropdown([(p.label(ctx.lang), p.name) for p in memory], value=memory[0].name,
                                  label=t("novice.memory"), info=t("novice.memory_info"), elem_id="novice-memory")
    _model_row(w, ctx)
    # The epochs shown start as the default presets' (the demo overlay's, for the default demo model).
    start = {w["preset"]: novice[0].name, w["memory"]: memory[0].name, w["model"]: DEMO, w["custom"]: ""}
    defaults = {FIELDS[0]: str(DEMO_DATASET), EPOCHS: _preset_epochs(w, start)}
    with gr.Row():
        for path in FIELDS:
            w[path] = field_with_list(ctx, params_by_path()[path], "novice", value=defaults.get(path))
    build_doctor_panel(ctx, w[FIELDS[0]], ".txt", w["caption.trigger_word"], elem_prefix="novice-doctor",
                       config_fn=lambda d: config_or_none(lambda v: build_config(w, v, ""), d),
                       config_inputs=[w["preset"], w["memory"], w["model"], w["custom"], *(w[p] for p in FIELDS)])
    w["plan"] = gr.Markdown("", elem_id="novice-plan")
    w["start"] = gr.Button(t("novice.start"), variant="primary", size="lg", elem_id="novice-start")
    w["msg"] = gr.Markdown("", elem_id="novice-msg")
    w["run_id"] = gr.State(None)
    place_monitor(ctx, w["run_id"], key="novice-run", start=w["start"])
    _wire(w)


def _model_row(w: dict, ctx) -> None:
    p = params_by_path()[MODEL]
    with gr.Row():
        w["model"] = gr.Dropdown(model_choices(ctx), value=DEMO, label=label_of(p, ctx.lang), info=p.help(ctx.lang),
                                 scale=3, elem_id="novice-model")
        w["custom"] = gr.Textbox(label=ctx.t("novice.custom_path"), info=ctx.t("novice.custom_path_info"),
                                 scale=3, elem_id="novice-custom-model")
        w["refresh"] = gr.Button(ctx.t("novice.refresh"), scale=0, min_width=140, size="sm")
    ctx.shared.setdefault(MODEL_LISTS, []).append((w["model"], lambda: model_choices(ctx)))  # refreshed by downloads


def _gigabytes(preset) -> int:
    """Memory tiers in size order; the number comes from the preset's own title ("8 GB GPU")."""
    found = re.search(r"\d+", preset.title.get("en", ""))
    return int(found.group()) if found else 0


def model_choices(ctx) -> list[tuple[str, str]]:
    """The demo model, SD1.5 from the Hub, then the diffusers folders and checkpoint files in models/."""
    out = [(ctx.t("novice.demo_model"), DEMO), (ctx.t("novice.hub_sd15"), SD15_HUB)]
    for entry in list_models(ctx.models_dir):
        if not entry.name.startswith(DEMO):  # the demo model is offered by name above
            out.append((ctx.t("novice.local_model", name=entry.name), str(entry)))
    return out


def _wire(w: dict) -> None:
    inputs = {w["preset"], w["memory"], w["model"], w["custom"], *(w[p] for p in FIELDS)}
    gr.on([w["preset"].change, w["model"].change, w["custom"].change], lambda d: _preset_epochs(w, d),
          inputs={w["preset"], w["memory"], w["model"], w["custom"]}, outputs=[w[EPOCHS]])
    # Drawn when the tab is shown (the page opens on it) and whenever an input changes, so it is always current.
    on_shown(w["ctx"], lambda d: _plan_text(w, d), inputs, [w["plan"]], triggers=[c.change for c in inputs],
             show_progress="hidden")
    # The LoRA is named after its dataset (mychar.safetensors) until the user types a name of their own.
    w["named"] = gr.State(w[NAME].value)
    w[FIELDS[0]].change(_follow_dataset, inputs=[w[FIELDS[0]], w[NAME], w["named"]], outputs=[w[NAME], w["named"]],
                        show_progress="hidden")
    w["refresh"].click(lambda: gr.update(choices=model_choices(w["ctx"])), outputs=[w["model"]])
    w["start"].click(lambda d: (yield from _start(w, d)), inputs=inputs,
                     outputs=[w["msg"], w["run_id"], w["start"]])


def output_name_for(folder: str) -> str:
    """A LoRA file name from a dataset folder's name ('' when it has none): a plain file name, as output_name must."""
    return plain_name(Path((folder or "").strip()).name, fill="-")


def _follow_dataset(folder: str, name: str, named: str):
    """(output name, the name Danlu gave) after the dataset changed: the dataset's name, unless the user typed one."""
    if (name or "").strip() != named:
        return gr.skip(), gr.skip()
    new = output_name_for(folder) or named
    return new, new


# ---- building the config --------------------------------------------------------------------------
def _model_value(data: dict, w: dict) -> str:
    return (data[w["custom"]] or "").strip() or (data[w["model"]] or "")


def preset_names(data: dict, w: dict) -> list[str]:
    """Novice preset, then memory tier, then (for the demo model) the demo overlay, which must win."""
    names = [data[w["preset"]]] + ([data[w["memory"]]] if data[w["memory"]] else [])
    if _model_value(data, w) == DEMO:
        names += [p.name for p in list_presets("demo")]
    return names


def build_config(w: dict, data: dict, base_model: str) -> TrainConfig:
    """Presets, then this tab's fields. Raises ConfigError naming the field on a bad value."""
    overlay = fields_overlay(FIELDS, w, data, {"model": {"base_model": base_model}} if base_model else {})
    return apply_overlay(apply_presets(preset_names(data, w)), overlay)


def _preset_epochs(w: dict, data: dict) -> int:
    """Show the chosen presets' epochs, so the number the user sees is the one that will be used."""
    return apply_presets(preset_names(data, w)).training.max_train_epochs


def model_problem(w: dict, value: str) -> str | None:
    """Why `value` cannot be a base model, or None. Hub ids cannot be checked offline; paths can."""
    t = w["ctx"].t
    if not value:
        return t("novice.model_empty")
    if value != DEMO and sandbox.is_local(value):
        try:  # on a remote server, say "not allowed" before "exists": never tell whether an outside file exists
            sandbox.allowed(value, "model.base_model")
        except ValueError as exc:
            return escape(str(exc))
    if value == DEMO or Path(value).expanduser().exists():
        return None
    looks_like_path = value.startswith((".", "/", "~", "\\")) or ":" in value or value.endswith(MODEL_SUFFIXES)
    if HUB_ID.fullmatch(value) and not looks_like_path:
        return None
    return t("novice.model_missing", path=value)


def dataset_problem(w: dict, cfg: TrainConfig):
    """(plan, None) for a usable dataset, else (None, message)."""
    t = w["ctx"].t
    if not cfg.dataset.train_data_dir.strip():
        return None, t("novice.dataset_empty")
    plan = plan_run(cfg)
    return (plan, None) if plan.ok else (None, t("novice.dataset_missing", detail=escape(plan.error)))


# ---- callbacks --------------------------------------------------------------------------------------
def _plan_text(w: dict, data: dict) -> str:
    t, lang = w["ctx"].t, w["ctx"].lang
    model = _model_value(data, w)
    try:
        cfg = build_config(w, data, model if model != DEMO else "")
    except ConfigError as exc:
        return summary_text(exc.findings, lang)
    plan, problem = dataset_problem(w, cfg)
    if problem:
        return problem
    cfg = with_previews(cfg, plan)
    lines = [t("novice.plan_title"), ""] + [f"- {line}" for line in _plan_lines(t, cfg, plan, model)]
    lines += [skipped_line(t, plan)] if plan.problems else []
    bad_model = model_problem(w, model)
    lines += [bad_model] if bad_model else []
    return "\n".join(lines) + "\n\n" + memory_estimate_markdown(_with_demo_model(w["ctx"], cfg, model), lang)


def skipped_line(t, plan) -> str:
    """How many items the scan skipped, and the first of them (a file name may hold Markdown: shown as is)."""
    return t("novice.plan_problems", n=len(plan.problems), first=escape(plan.problems[0]))


def _with_demo_model(ctx, cfg, model: str):
    """`cfg` with the demo model's own folder as base model when the demo is chosen (built on first use). The
    memory estimate measures that folder, so the tiny model is not estimated with full-size SD1.5 figures."""
    if model != DEMO:
        return cfg
    from trainer.models.demo import ensure_demo_model

    return apply_overlay(cfg, {"model": {"base_model": str(ensure_demo_model(ctx.models_dir))}})


def with_previews(cfg: TrainConfig, plan) -> TrainConfig:
    """`cfg` previewing the dataset's own subject: two of its captions as the prompts (the presets set how often)."""
    prompts = preview_prompts(plan.captions, cfg.caption.trigger_word)
    return apply_overlay(cfg, {"sampling": {"sample_prompts": prompts}})


def _previews_line(t, cfg: TrainConfig) -> list[str]:
    every = cfg.sampling.sample_every_n_epochs
    if not every or not cfg.sampling.sample_prompts.strip():
        return []
    prompts = " · ".join(f"“{escape(p)}”" for p in cfg.sampling.sample_prompts.splitlines())
    return [t("novice.plan_previews_each" if every == 1 else "novice.plan_previews", n=every, prompts=prompts)]


def _plan_lines(t, cfg: TrainConfig, plan, model: str) -> list[str]:
    subsets = ", ".join(t("novice.plan_subset", name=n, count=c, repeats=r) for n, c, r in plan.subsets)
    tr = cfg.training
    total = (t("novice.plan_max_steps", total=plan.total_steps) if tr.max_train_steps
             else t("novice.plan_total", epochs=tr.max_train_epochs, total=plan.total_steps))
    shown_model = t("novice.demo_model") if model == DEMO else f"`{model}`"
    return [
        t("novice.plan_images", images=plan.images, folders=len(plan.subsets), subsets=subsets),
        t("novice.plan_epoch", repeated=plan.repeated, batch=tr.train_batch_size, steps=plan.steps_per_epoch),
        total,
        t("novice.plan_model", model=shown_model),
        *_previews_line(t, cfg),
        t("novice.plan_output", name=cfg.save.output_name),
    ]


def _start(w: dict, data: dict):
    busy = w["ctx"].t("novice.building_demo") if _model_value(data, w) == DEMO else ""
    yield from start_once(w, _start_run, data, busy)


def _start_run(w: dict, data: dict) -> dict:
    ctx = w["ctx"]
    model = _model_value(data, w)
    problem = model_problem(w, model)
    try:
        cfg = build_config(w, data, "" if model == DEMO else model)
    except ConfigError as exc:
        return {w["msg"]: ctx.t("novice.settings_bad") + "\n\n" + summary_text(exc.findings, ctx.lang)}
    plan, bad_dataset = dataset_problem(w, cfg)
    problem = problem or bad_dataset
    if problem:
        return {w["msg"]: problem}
    cfg = _with_demo_model(ctx, with_previews(cfg, plan), model)
    return queue_checked(ctx, cfg, w, ctx.t("novice.settings_bad"))
