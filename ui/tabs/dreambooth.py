"""Dreambooth tab: a full fine-tune of SD1.5 or SDXL, saved as one checkpoint file the WebUIs load.

Its own presets (kind "dreambooth", one per family and GPU size) and only the fields that apply to a full
fine-tune: no network settings. Every field is a schema parameter (label and help from the schema); the
config is the preset, then these fields, with training_type forced to "dreambooth". Runs go to the same queue
and appear in Runs like any other.
"""

from __future__ import annotations

import gradio as gr

from trainer.config import TrainConfig, apply_overlay
from trainer.config.presets import apply_presets, list_presets
from trainer.config.schema import params_by_path
from ui.components.dataset_picker import field_with_list
from ui.components.doctor_panel import build_doctor_panel
from ui.forms.launch import (
    build_and_queue,
    config_or_none,
    fields_overlay,
    place_monitor,
    plan_text,
    start_once,
)
from ui.forms.widgets import to_widget
from ui.tab_timers import on_shown

TITLE = "dreambooth.title"
PREFIX = "dreambooth"
# (row of fields) in display order; the values override the preset.
ROWS = (
    ("model.base_model", "save.output_name"),
    ("dataset.train_data_dir", "caption.trigger_word", "dataset.resolution"),
    ("dataset.reg_data_dir", "dataset.prior_loss_weight"),
    ("dreambooth.class_prompt", "dreambooth.num_class_images"),
    ("training.max_train_steps", "optimizer.learning_rate", "dreambooth.learning_rate_te",
     "dreambooth.learning_rate_te2"),
    ("dreambooth.stop_text_encoder_training", "dreambooth.ema_decay", "training.gradient_checkpointing",
     "dreambooth.fused_backward_pass"),
    ("save.save_precision", "save.save_model_as", "save.save_every_n_steps", "dreambooth.save_diffusers"),
)
FIELDS = tuple(path for row in ROWS for path in row)


def available() -> bool:
    return bool(list_presets("dreambooth"))


def build(ctx) -> None:
    t = ctx.t
    gr.Markdown(t("dreambooth.intro"))
    w: dict = {"ctx": ctx}
    presets = list_presets("dreambooth")
    w["preset"] = gr.Dropdown([(p.label(ctx.lang), p.name) for p in presets], value=presets[0].name,
                              label=t("dreambooth.preset"), info=t("dreambooth.preset_info"),
                              elem_id="dreambooth-preset")
    shown = apply_presets([presets[0].name])
    for row in ROWS:
        with gr.Row():
            for path in row:
                w[path] = field_with_list(ctx, params_by_path()[path], PREFIX, value=_value(shown, path),
                                          visible=_applies(shown, path))
    build_doctor_panel(ctx, w["dataset.train_data_dir"], ".txt", w["caption.trigger_word"],
                       elem_prefix="dreambooth-doctor", config_fn=lambda d: config_or_none(lambda v: build_config(w, v), d),
                       config_inputs=[w["preset"], *(w[p] for p in FIELDS)])
    w["plan"] = gr.Markdown("", elem_id="dreambooth-plan")
    w["start"] = gr.Button(t("dreambooth.start"), variant="primary", elem_id="dreambooth-start")
    w["msg"] = gr.Markdown("", elem_id="dreambooth-msg")
    w["run_id"] = gr.State(None)
    place_monitor(ctx, w["run_id"], key="dreambooth-run", start=w["start"])
    _wire(ctx, w)


def _applies(cfg: TrainConfig, path: str) -> bool:
    """Fields of another family (SDXL's second text encoder) are hidden for this preset's family."""
    return cfg.model.family in params_by_path()[path].families


def _fill(name: str) -> list:
    cfg = apply_presets([name])
    return [gr.update(value=to_widget(params_by_path()[p], _value(cfg, p)), visible=_applies(cfg, p)) for p in FIELDS]


def _value(cfg: TrainConfig, path: str):
    group, name = path.split(".")
    return getattr(getattr(cfg, group), name)


def _wire(ctx, w: dict) -> None:
    fields = [w[p] for p in FIELDS]
    # Choosing a preset shows its values in every field (and the fields of its family).
    w["preset"].change(_fill, inputs=[w["preset"]], outputs=fields)
    inputs = {w["preset"], *fields}
    # Drawn when the tab is shown and whenever an input changes; not on every page load (the page opens elsewhere).
    on_shown(ctx, lambda d: plan_text(ctx, lambda v: build_config(w, v), d), inputs, [w["plan"]],
             triggers=[c.change for c in inputs], show_progress="hidden")
    w["start"].click(lambda d: (yield from _start(w, d)), inputs=inputs, outputs=[w["msg"], w["run_id"], w["start"]])


def build_config(w: dict, data: dict) -> TrainConfig:
    """The preset, then this tab's fields, as a Dreambooth run. Raises ConfigError naming a bad field."""
    overlay = fields_overlay(FIELDS, w, data, {"model": {"training_type": "dreambooth"}})
    return apply_overlay(apply_presets([data[w["preset"]]]), overlay)


def _start(w: dict, data: dict):
    yield from start_once(w, _start_run, data)


def _start_run(w: dict, data: dict) -> dict:
    return build_and_queue(w, lambda d: build_config(w, d), data, w["ctx"].t("dreambooth.settings_bad"))
