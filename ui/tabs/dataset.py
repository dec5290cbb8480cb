"""Dataset tab: upload images into the workspace as a kohya dataset, and download runs and outputs as zips.

The work is trainer.datasets'; this module lays out widgets and turns their values into calls. Nothing here
writes outside the workspace: uploads go to <workspace>/datasets/<name>/, zips to <workspace>/cache/downloads/.
"""

from __future__ import annotations

import gradio as gr

from trainer.datasets import datasets_root
from trainer.datasets.archive import downloadable, zip_path
from trainer.datasets.upload import UPLOAD_IMAGES, apply_import, plan_import
from trainer.sandbox import allowed
from ui.components.dataset_picker import refresh_outputs
from ui.messages import failure
from ui.tab_timers import on_shown
from ui.tabs.dataset_dupes import build_dupes
from ui.tabs.dataset_models import build_models
from ui.tabs.dataset_tools import build_tools

TITLE = "dataset.title"
TRACK = gr.Progress()  # Gradio finds progress tracking by a parameter's default


def available() -> bool:
    return True


def build(ctx) -> None:
    gr.Markdown(ctx.t("dataset.intro"))
    w: dict = {"ctx": ctx}
    _upload_section(w, ctx)
    build_tools(ctx)
    build_dupes(ctx)
    build_models(ctx)
    _download_section(w, ctx)
    _wire_upload(w)
    _wire_download(w)


def _upload_section(w: dict, ctx) -> None:
    t = ctx.t
    with gr.Accordion(t("dataset.upload_heading"), open=True):
        w["files"] = gr.File(file_count="multiple", file_types=[".zip", *UPLOAD_IMAGES, ".txt", ".caption"],
                             type="filepath", label=t("dataset.files"), elem_id="dataset-files")
        with gr.Row():
            w["name"] = gr.Textbox(label=t("dataset.name"), info=t("dataset.name_info"), elem_id="dataset-name")
            w["repeats"] = gr.Number(10, precision=0, minimum=1, label=t("dataset.repeats"),
                                     info=t("dataset.repeats_info"), elem_id="dataset-repeats")
            w["concept"] = gr.Textbox(label=t("dataset.concept"), info=t("dataset.concept_info"),
                                      elem_id="dataset-concept")
            w["merge"] = gr.Checkbox(False, label=t("dataset.merge"), info=t("dataset.merge_info"),
                                     elem_id="dataset-merge")
        w["layout"] = gr.Code("", language=None, label=t("dataset.layout"), interactive=False,
                              elem_id="dataset-layout")
        w["import"] = gr.Button(t("dataset.import"), variant="primary", elem_id="dataset-import")
        w["msg"] = gr.Markdown("", elem_id="dataset-msg")


def _download_section(w: dict, ctx) -> None:
    t = ctx.t
    with gr.Accordion(t("dataset.download_heading"), open=False):
        with gr.Row():
            w["dl_pick"] = gr.Dropdown([], label=t("dataset.download_pick"),
                                       elem_id="dataset-download-pick", scale=3)
            w["dl_refresh"] = gr.Button(t("dataset.refresh"), size="sm", scale=0, min_width=120)
            w["dl_make"] = gr.Button(t("dataset.download_make"), elem_id="dataset-download-make", scale=1)
        w["dl_file"] = gr.File(label=t("dataset.download_file"), interactive=False, elem_id="dataset-download-file")
        w["dl_msg"] = gr.Markdown("", elem_id="dataset-download-msg")


def _plan(w: dict, data: dict, files: list[str] | None):
    ctx = w["ctx"]
    if not files:
        raise ValueError(ctx.t("dataset.no_files"))
    return plan_import(files, datasets_root(ctx.workspace), data[w["name"]] or "", int(data[w["repeats"]] or 0),
                       data[w["concept"]] or "", bool(data[w["merge"]]))


def _preview(w: dict, data: dict) -> dict:
    files = data[w["uploaded"]]
    if not files:  # cleared (also right after an import): keep the import's message
        return {w["layout"]: gr.skip(), w["msg"]: gr.skip()}
    try:
        return {w["layout"]: _plan(w, data, files).preview(), w["msg"]: ""}
    except ValueError as exc:  # ImportRefused is a ValueError: show why, nothing was written
        return {w["layout"]: "", w["msg"]: failure(w["ctx"].t, exc)}


def _import(w: dict, data: dict, progress=TRACK) -> dict:
    ctx = w["ctx"]
    try:
        plan = _plan(w, data, data[w["files"]])
        allowed(plan.root.parent, ctx.t("dataset.name"))  # the workspace is always allowed; this guards the rule
        root = apply_import(plan, lambda done, total: progress((done, total), desc=ctx.t("dataset.copying"),
                                                                unit="bytes"))
    except (ValueError, OSError) as exc:
        return {w["msg"]: failure(ctx.t, exc)}
    n_images = sum(images for images, _ in plan.folders().values())
    return {w["msg"]: ctx.t("dataset.imported", n=n_images, path=root), w["layout"]: plan.preview(),
            w["files"]: None}


def _wire_upload(w: dict) -> None:
    ctx = w["ctx"]
    # The preview must not take the File itself as an input. While a file uploads, Gradio's page waits for the
    # upload before it has an event's inputs, but reads the other fields at once, and it counts the event as
    # running (what queues later changes behind it: always_last) only once it has them all. So each edit made
    # during an upload started a preview of its own, with the fields as they were at that keystroke, all sent
    # together when the upload ended and run side by side (HANDLER_CONCURRENCY): whichever finished last
    # stayed on screen, e.g. "Concept ''" with the concept typed. The uploaded paths are copied into a state once
    # the File has them; the preview reads that, so gathering its inputs never waits, a change while a preview
    # runs waits for it, and the one run after reads the fields as they are then.
    w["uploaded"] = gr.State([])
    w["files"].change(lambda files: files or [], inputs=w["files"], outputs=w["uploaded"], show_progress="hidden")
    gr.on([w["uploaded"].change, w["name"].change, w["repeats"].change, w["concept"].change, w["merge"].change],
          lambda d: _preview(w, d), inputs={w["uploaded"], w["name"], w["repeats"], w["concept"], w["merge"]},
          outputs=[w["layout"], w["msg"]], show_progress="hidden", trigger_mode="always_last")
    inputs = {w["files"], w["name"], w["repeats"], w["concept"], w["merge"]}  # an import waits for the upload
    done = w["import"].click(lambda d: _import(w, d), inputs=inputs, outputs=[w["layout"], w["msg"], w["files"]])

    def wire_pickers() -> None:  # after every tab exists: refresh each tab's dataset picker after an import
        outputs, fn = refresh_outputs(ctx, "dataset")
        if outputs:
            done.then(fn, outputs=outputs)

    ctx.shared.setdefault("after_build", []).append(wire_pickers)


def _download_choices(ctx) -> list[tuple[str, str]]:
    return [(p.relative_to(ctx.workspace).as_posix() + ("/" if p.is_dir() else ""), str(p))
            for p in downloadable(ctx.workspace)]


def _wire_download(w: dict) -> None:
    ctx = w["ctx"]

    def make(choice: str | None):
        if not choice:
            return None, ctx.t("dataset.download_none")
        try:
            source = allowed(choice, ctx.t("dataset.download_pick"))
            if ctx.workspace.resolve() not in source.parents:
                raise ValueError(ctx.t("dataset.download_outside", path=choice))
            return str(zip_path(source, ctx.cache_dir / "downloads")), ""
        except (ValueError, OSError) as exc:
            return None, failure(ctx.t, exc)

    # Runs and outputs appear while the page is open: the list is read whenever the tab is shown.
    on_shown(ctx, lambda: gr.update(choices=_download_choices(ctx)), [], w["dl_pick"],
             triggers=[w["dl_refresh"].click])
    w["dl_make"].click(make, inputs=w["dl_pick"], outputs=[w["dl_file"], w["dl_msg"]])
