"""The dataset-doctor panel that the training tabs (Novice, Expert, Dreambooth, Flux) embed under their dataset fields.

Every argument except `folder` may be a Gradio component (its current value is read when the button is
pressed) or a plain value. The check only reads the folder.
"""

from __future__ import annotations

import gradio as gr

from trainer import sandbox
from trainer.config import parse_resolution
from trainer.doctor import check_dataset, render_markdown
from trainer.markdown import escape

# Gradio finds progress tracking by the parameter's default; one shared marker object is enough.
TRACK = gr.Progress()


def _value(data: dict, source, default):
    """The value of `source` in the callback's input dict if it is a component, else `source` itself."""
    if isinstance(source, gr.components.Component):
        value = data.get(source)
        return default if value in (None, "") else value
    return default if source in (None, "") else source


def build_doctor_panel(ctx, folder: gr.Textbox, caption_ext, trigger=None, batch_size=1, resolution="512,512",
                       elem_prefix: str = "doctor", config_fn=None, config_inputs=()) -> dict:
    """Add the panel (a button and a report) where it is called; returns its components by name.

    With `config_fn(data) -> TrainConfig | None` (reading `config_inputs`), the check uses that config's caption
    extension, trigger word, resolution, buckets, batch size and regularisation folder, so it judges the dataset
    exactly as the run will see it; the plain arguments are the fallback."""
    with gr.Accordion(ctx.t("doctor.title"), open=False, elem_id=f"{elem_prefix}-panel"):
        gr.Markdown(ctx.t("doctor.about"))
        button = gr.Button(ctx.t("doctor.run"), elem_id=f"{elem_prefix}-run")
        report = gr.Markdown(elem_id=f"{elem_prefix}-report")
    sources = [folder, caption_ext, trigger, batch_size, resolution, *config_inputs]
    inputs = {s for s in sources if isinstance(s, gr.components.Component)}

    def settings(data: dict) -> dict:
        cfg = config_fn(data) if config_fn else None
        if cfg is None:
            return {"caption_ext": str(_value(data, caption_ext, ".txt")), "trigger": str(_value(data, trigger, "")),
                    "batch_size": int(_value(data, batch_size, 1)),
                    "resolution": parse_resolution(_value(data, resolution, "512,512"))}
        d = cfg.dataset
        return {"caption_ext": cfg.caption.caption_extension, "trigger": cfg.caption.trigger_word,
                "batch_size": cfg.training.train_batch_size, "resolution": parse_resolution(d.resolution),
                "reg_dir": d.reg_data_dir or None, "enable_bucket": d.enable_bucket, "min_reso": d.min_bucket_reso,
                "max_reso": d.max_bucket_reso, "step": d.bucket_reso_steps, "no_upscale": d.bucket_no_upscale}

    def run(data: dict, progress=TRACK) -> str:
        path = str(_value(data, folder, "")).strip()
        if not path:
            return ctx.t("doctor.no_folder")
        try:
            sandbox.allowed(path, ctx.t("doctor.title"))
            options = settings(data)
            if options.get("reg_dir"):
                sandbox.allowed(options["reg_dir"], "dataset.reg_data_dir")
            result = check_dataset(path, **options,
                                   progress=lambda n, total: progress((n, total), desc=ctx.t("doctor.progress")))
        except (ValueError, OSError) as exc:  # bad resolution or extension, outside the sandbox, folder vanished
            return ctx.t("doctor.failed", error=escape(exc))
        return render_markdown(result, ctx.lang)

    button.click(run, inputs=inputs, outputs=report)
    return {"button": button, "report": report}
