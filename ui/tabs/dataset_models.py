"""The Dataset tab's base-model section: download a model or VAE into the workspace's models/ folder by
Hugging Face id, Civitai model version or link, with progress; then every model field can pick it."""

from __future__ import annotations

import gradio as gr

from trainer.datasets.downloads import download
from trainer.datasets.fetch import DownloadError
from ui.components.dataset_picker import refresh_outputs
from ui.messages import failure

TRACK = gr.Progress()


def build_models(ctx) -> dict:
    t = ctx.t
    w: dict = {}
    with gr.Accordion(t("dataset.models_heading"), open=False, elem_id="dataset-models"):
        gr.Markdown(t("dataset.models_about"))
        with gr.Row():
            w["source"] = gr.Textbox(label=t("dataset.models_source"), info=t("dataset.models_source_info"),
                                     elem_id="dataset-models-source", scale=3)
            # type="password": the browser hides it; the handler passes it on and never prints it.
            w["token"] = gr.Textbox(label=t("dataset.models_token"), info=t("dataset.models_token_info"),
                                    type="password", elem_id="dataset-models-token", scale=2)
        w["go"] = gr.Button(t("dataset.models_download"), variant="primary", elem_id="dataset-models-download")
        w["msg"] = gr.Markdown("", elem_id="dataset-models-msg")

    def run(source: str, token: str, progress=TRACK) -> str:
        def report(name: str, done: int, total: int) -> None:
            progress((done, total) if total else None, desc=ctx.t("dataset.models_progress", name=name,
                                                                  mb=done / 2**20), unit="bytes")
        try:
            path = download(source, ctx.models_dir, civitai_token=(token or "").strip(), progress=report)
        except DownloadError as exc:
            return failure(ctx.t, exc)
        return ctx.t("dataset.models_done", path=path)

    done = w["go"].click(run, inputs=[w["source"], w["token"]], outputs=w["msg"])

    def wire() -> None:  # after every tab exists: the new model shows up in every model list at once
        outputs, fn = refresh_outputs(ctx, "model")
        if outputs:
            done.then(fn, outputs=outputs)

    ctx.shared.setdefault("after_build", []).append(wire)
    return w
