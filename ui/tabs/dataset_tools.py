"""The Dataset tab's image-tools section: pick a dataset and a tool, preview, apply (with backups), undo.

The work is trainer.datasets.edits'; this module turns widget values into its Options and its results into
text and a before/after gallery.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from trainer.config import parse_resolution
from trainer.datasets.edits import apply, preview, undo_last
from trainer.datasets.image_tools import TOOLS, Options, open_first_frame
from trainer.sandbox import allowed
from ui.components.dataset_picker import dataset_picker
from ui.messages import failure

TRACK = gr.Progress()
FOCUS = {"centre": (0.5, 0.5), "top": (0.5, 0.0), "bottom": (0.5, 1.0), "left": (0.0, 0.5), "right": (1.0, 0.5)}
PREVIEW_PAIRS = 4  # before/after pairs shown; the list below names every file
LISTED = 50


def build_tools(ctx) -> dict:
    t = ctx.t
    w: dict = {"ctx": ctx}
    with gr.Accordion(t("dataset.tools_heading"), open=False, elem_id="dataset-tools"):
        with gr.Row():
            w["folder"] = gr.Textbox(label=t("dataset.tools_folder"), info=t("dataset.tools_folder_info"),
                                     elem_id="dataset-tools-folder", scale=3)
            dataset_picker(ctx, w["folder"], "dataset-tools-picker")
        with gr.Row():
            w["tool"] = gr.Radio([(t(f"dataset.tool_{name}"), name) for name in TOOLS], value="convert",
                                 label=t("dataset.tool"), elem_id="dataset-tool")
        with gr.Row():
            w["aspect"] = gr.Textbox("1:1", label=t("dataset.aspect"), info=t("dataset.aspect_info"))
            w["focus"] = gr.Radio([(t(f"dataset.focus_{k}"), k) for k in FOCUS], value="centre",
                                  label=t("dataset.focus"), elem_id="dataset-focus")
            w["resolution"] = gr.Textbox("512,512", label=t("dataset.resolution"), info=t("dataset.resolution_info"))
            w["max_side"] = gr.Number(2048, precision=0, minimum=64, label=t("dataset.max_side"))
        with gr.Row():
            w["preview"] = gr.Button(t("dataset.preview"), elem_id="dataset-tools-preview")
            w["apply"] = gr.Button(t("dataset.apply"), variant="primary", elem_id="dataset-tools-apply")
            w["undo"] = gr.Button(t("dataset.undo"), elem_id="dataset-tools-undo")
        w["gallery"] = gr.Gallery(label=t("dataset.before_after"), columns=4, height=300, elem_id="dataset-tools-gallery")
        w["msg"] = gr.Markdown("", elem_id="dataset-tools-msg")
    _wire(w)
    return w


def folder_of(ctx, typed: str | None) -> Path:
    """The dataset folder a box names, checked (exists; allowed on a remote server)."""
    typed = (typed or "").strip()
    if not typed:
        raise ValueError(ctx.t("dataset.no_folder"))
    folder = allowed(typed, ctx.t("dataset.tools_folder"))
    if not folder.is_dir():
        raise ValueError(ctx.t("dataset.folder_missing", path=typed))
    return folder


def _options(ctx, v: dict) -> Options:
    try:
        a, b = (int(x) for x in str(v["aspect"]).replace("x", ":").split(":"))
        if a <= 0 or b <= 0:
            raise ValueError
    except ValueError:
        raise ValueError(ctx.t("dataset.aspect_bad", value=v["aspect"])) from None
    return Options(aspect=(a, b), focus=FOCUS[v["focus"]], resolution=parse_resolution(v["resolution"]),
                   max_side=int(v["max_side"] or 2048))


def _lines(ctx, outcome, root: Path) -> str:
    rows = [f"- `{c.path.relative_to(root)}`: {c.detail}" for c in outcome.changed[:LISTED]]
    if len(outcome.changed) > LISTED:
        rows.append(ctx.t("dataset.more", n=len(outcome.changed) - LISTED))
    rows += [f"- ⚠ `{f}`: {why}" for f, why in outcome.failed]
    return "\n".join(rows)


def _pairs(outcome) -> list:
    shown = []
    for c in outcome.changed[:PREVIEW_PAIRS]:
        if c.image is not None:
            shown += [(open_first_frame(c.path), f"{c.path.name}"), (c.image, f"→ {c.new_path.name}")]
    return shown


def _wire(w: dict) -> None:
    ctx = w["ctx"]
    inputs = {w[k] for k in ("folder", "tool", "aspect", "focus", "resolution", "max_side")}

    def values(d: dict) -> dict:
        return {k: d[w[k]] for k in ("folder", "tool", "aspect", "focus", "resolution", "max_side")}

    def on_preview(d: dict):
        v = values(d)
        try:
            root = folder_of(ctx, v["folder"])
            outcome = preview(root, v["tool"], _options(ctx, v))
        except ValueError as exc:
            return None, failure(ctx.t, exc)
        if not outcome.changed:
            return None, ctx.t("dataset.nothing_to_do") + "\n\n" + _lines(ctx, outcome, root)
        head = ctx.t("dataset.would_change", n=len(outcome.changed))
        return _pairs(outcome), head + "\n\n" + _lines(ctx, outcome, root)

    def on_apply(d: dict, progress=TRACK):
        v = values(d)
        try:
            root = folder_of(ctx, v["folder"])
            outcome = apply(ctx.workspace, root, v["tool"], _options(ctx, v),
                            lambda n, total: progress((n, total), desc=ctx.t("dataset.applying")))
        except ValueError as exc:
            return None, failure(ctx.t, exc)
        if outcome.edit is None:
            return None, ctx.t("dataset.nothing_to_do")
        head = ctx.t("dataset.changed", n=len(outcome.changed), backup=outcome.edit.folder)
        return None, head + "\n\n" + _lines(ctx, outcome, root)

    def on_undo(folder: str):
        try:
            root = folder_of(ctx, folder)
            edit = undo_last(ctx.workspace, root)
        except ValueError as exc:
            return failure(ctx.t, exc)
        if edit is None:
            return ctx.t("dataset.undo_none")
        return ctx.t("dataset.undone", tool=ctx.t(f"dataset.tool_{edit.tool}"), n=len(edit.entries))

    w["preview"].click(on_preview, inputs=inputs, outputs=[w["gallery"], w["msg"]])
    w["apply"].click(on_apply, inputs=inputs, outputs=[w["gallery"], w["msg"]])
    w["undo"].click(on_undo, inputs=w["folder"], outputs=w["msg"])

