"""Flux tab: a Flux starting point (preset) and the fields a Flux LoRA run needs, then Start.

The fields are schema parameters (labels and help from the schema, ids prefixed "flux-"); the preset fills
them, and the run uses exactly what they show: the config is the preset with every field laid over it.
"""

from __future__ import annotations

import gradio as gr

from trainer.config import ConfigError, TrainConfig, apply_overlay, get_value
from trainer.config.presets import apply_presets, list_presets
from trainer.config.schema import params_by_path
from ui.components.dataset_picker import field_with_list
from ui.components.doctor_panel import build_doctor_panel
from ui.forms import from_widget, to_widget
from ui.forms.launch import build_and_queue, config_or_none, place_monitor, plan_text, start_once
from ui.tab_timers import on_shown

TITLE = "flux.title"
FIELDS = (
    "model.base_model", "model.ae", "model.clip_l", "model.t5xxl", "dataset.train_data_dir", "dataset.resolution",
    "caption.trigger_word", "save.output_name", "training.max_train_epochs", "network.network_dim",
    "network.network_alpha", "network.network_weights", "optimizer.learning_rate", "flux.timestep_sampling",
    "flux.sigmoid_scale", "flux.discrete_flow_shift", "flux.model_prediction_type", "flux.guidance_scale",
    "flux.t5xxl_max_token_length", "flux.apply_t5_attn_mask", "speed.fp8_base", "flux.blocks_to_swap",
    "speed.mixed_precision", "training.gradient_checkpointing", "speed.cache_text_encoder_outputs", "other.custom_toml",
)


def available() -> bool:
    return True


def flux_presets() -> list:
    return [p for p in list_presets() if p.family == "flux" and p.kind in ("expert", "memory")]


def build(ctx) -> None:
    t = ctx.t
    gr.Markdown(t("flux.intro"))
    w: dict = {"ctx": ctx}
    presets = flux_presets()
    w["preset"] = gr.Dropdown([(p.label(ctx.lang), p.name) for p in presets], value=presets[0].name,
                              label=t("flux.preset"), elem_id="flux-preset")
    start_cfg = apply_presets(preset_stack(presets[0].name))
    params = params_by_path()
    with gr.Row(equal_height=False):
        for i in range(0, len(FIELDS), 4):
            with gr.Column():
                for path in FIELDS[i:i + 4]:
                    w[path] = field_with_list(ctx, params[path], "flux", value=get_value(start_cfg, path))
    build_doctor_panel(ctx, w["dataset.train_data_dir"], ".txt", w["caption.trigger_word"], elem_prefix="flux-doctor",
                       config_fn=lambda d: config_or_none(lambda v: build_config(w, v), d),
                       config_inputs=[w["preset"], *(w[p] for p in FIELDS)])
    w["plan"] = gr.Markdown("", elem_id="flux-plan")
    w["start"] = gr.Button(t("flux.start"), variant="primary", elem_id="flux-start")
    w["msg"] = gr.Markdown("", elem_id="flux-msg")
    w["run_id"] = gr.State(None)
    place_monitor(ctx, w["run_id"], key="flux-run", start=w["start"])
    fields = [w[p] for p in FIELDS]
    w["preset"].change(lambda name: _preset_values(name), inputs=w["preset"], outputs=fields)
    inputs = {w["preset"], *fields}
    # Problems and the memory estimate before Start: drawn when the tab is shown and whenever a field changes.
    on_shown(ctx, lambda d: plan_text(ctx, lambda v: build_config(w, v), d), inputs, [w["plan"]],
             triggers=[c.change for c in inputs], show_progress="hidden")
    w["start"].click(lambda d: (yield from start_once(w, _start, d)), inputs=inputs,
                     outputs=[w["msg"], w["run_id"], w["start"]])


def preset_stack(name: str) -> list[str]:
    """A memory tier is laid over the Flux starting point(s); a starting point stands alone."""
    starts = [p.name for p in flux_presets() if p.kind == "expert"]
    return [name] if name in starts else [*starts, name]


def _preset_values(name: str) -> list:
    cfg = apply_presets(preset_stack(name))
    return [to_widget(params_by_path()[p], get_value(cfg, p)) for p in FIELDS]


def build_config(w: dict, data: dict) -> TrainConfig:
    """The preset with every field of the tab laid over it (family Flux). Raises ConfigError naming a field."""
    overlay: dict = {"model": {"family": "flux"}}
    for path in FIELDS:
        value, bad = from_widget(params_by_path()[path], data[w[path]])
        if bad:
            raise ConfigError([bad])
        group, name = path.split(".")
        overlay.setdefault(group, {})[name] = value
    return apply_overlay(apply_presets(preset_stack(data[w["preset"]])), overlay)


def _start(w: dict, data: dict) -> dict:
    """Checked as the plan above the button checks (for training), then queued; the plan shows the estimate."""
    return build_and_queue(w, lambda d: build_config(w, d), data, w["ctx"].t("flux.not_started"))
