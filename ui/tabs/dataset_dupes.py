"""The Dataset tab's duplicates section: find the doctor's duplicate groups, show one side by side, keep one
and quarantine the rest (with captions), and restore a quarantine."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from trainer.datasets.quarantine import Group, find_groups, quarantine, quarantined, restore
from ui.components.dataset_picker import dataset_picker
from ui.messages import failure
from ui.tabs.dataset_tools import folder_of

TRACK = gr.Progress()


def build_dupes(ctx) -> dict:
    t = ctx.t
    w: dict = {"ctx": ctx, "groups": gr.State([])}
    with gr.Accordion(t("dataset.dupes_heading"), open=False, elem_id="dataset-dupes"):
        with gr.Row():
            w["folder"] = gr.Textbox(label=t("dataset.tools_folder"), elem_id="dataset-dupes-folder", scale=3)
            dataset_picker(ctx, w["folder"], "dataset-dupes-picker")
            w["find"] = gr.Button(t("dataset.dupes_find"), elem_id="dataset-dupes-find", scale=1)
        w["group"] = gr.Dropdown([], label=t("dataset.dupes_group"), elem_id="dataset-dupes-group")
        w["gallery"] = gr.Gallery(label=t("dataset.dupes_side_by_side"), columns=4, height=260,
                                  elem_id="dataset-dupes-gallery")
        w["keep"] = gr.Radio([], label=t("dataset.dupes_keep"), elem_id="dataset-dupes-keep")
        w["move"] = gr.Button(t("dataset.dupes_move"), variant="primary", elem_id="dataset-dupes-move")
        with gr.Row():
            w["held"] = gr.Dropdown([], label=t("dataset.dupes_held"), elem_id="dataset-dupes-held", scale=3)
            w["restore"] = gr.Button(t("dataset.dupes_restore"), elem_id="dataset-dupes-restore", scale=1)
        w["msg"] = gr.Markdown("", elem_id="dataset-dupes-msg")
    _wire(w)
    return w


def _label(ctx, n: int, g: Group) -> str:
    kind = ctx.t("dataset.dupes_exact") if g.exact else ctx.t("dataset.dupes_near", distance=g.distance)
    return ctx.t("dataset.dupes_group_label", n=n, count=len(g.files), kind=kind)


def _held_choices(ctx, root: Path) -> list[tuple[str, str]]:
    return [(ctx.t("dataset.dupes_held_label", id=e.id, count=sum(1 for x in e.entries if x.original)), e.id)
            for e in quarantined(ctx.workspace, root)]


def _wire(w: dict) -> None:
    ctx = w["ctx"]

    def find(folder: str, progress=TRACK):
        try:
            root = folder_of(ctx, folder)
            groups = find_groups(root, progress=lambda n, total: progress((n, total), desc=ctx.t("doctor.progress")))
        except ValueError as exc:
            return [], gr.update(choices=[], value=None), gr.update(choices=[]), failure(ctx.t, exc)
        choices = [(_label(ctx, n, g), n - 1) for n, g in enumerate(groups, 1)]
        msg = ctx.t("dataset.dupes_found", n=len(groups)) if groups else ctx.t("dataset.dupes_none")
        first = 0 if groups else None
        return (groups, gr.update(choices=choices, value=first),
                gr.update(choices=_held_choices(ctx, root), value=None), msg)

    def show(groups: list, index):
        if index is None or not groups or index >= len(groups):
            return None, gr.update(choices=[], value=None)
        files = groups[index].files
        return ([(f, Path(f).name) for f in files],
                gr.update(choices=[(Path(f).name, f) for f in files], value=files[0]))

    def move(folder: str, groups: list, index, keep):
        try:
            root = folder_of(ctx, folder)
            if index is None or not groups:
                raise ValueError(ctx.t("dataset.dupes_pick_group"))
            edit = quarantine(ctx.workspace, root, groups[index], keep)
        except ValueError as exc:
            return gr.skip(), gr.skip(), failure(ctx.t, exc)
        rest = [g for i, g in enumerate(groups) if i != index]
        moved = sum(1 for e in edit.entries if e.original)
        return (rest, gr.update(choices=[(_label(ctx, n, g), n - 1) for n, g in enumerate(rest, 1)], value=None),
                ctx.t("dataset.dupes_moved", n=moved, folder=edit.folder))

    def put_back(folder: str, held: str | None):
        try:
            root = folder_of(ctx, folder)
            edit = next((e for e in quarantined(ctx.workspace, root) if e.id == held), None)
            if edit is None:
                raise ValueError(ctx.t("dataset.dupes_pick_held"))
            n = restore(edit)
        except ValueError as exc:
            return gr.skip(), failure(ctx.t, exc)
        return gr.update(choices=_held_choices(ctx, root), value=None), ctx.t("dataset.dupes_restored", n=n)

    w["find"].click(find, inputs=w["folder"], outputs=[w["groups"], w["group"], w["held"], w["msg"]])
    w["group"].change(show, inputs=[w["groups"], w["group"]], outputs=[w["gallery"], w["keep"]])
    w["move"].click(move, inputs=[w["folder"], w["groups"], w["group"], w["keep"]],
                    outputs=[w["groups"], w["group"], w["msg"]]).then(
        lambda f: gr.update(choices=_held_choices(ctx, folder_of(ctx, f))), inputs=w["folder"], outputs=w["held"])
    w["restore"].click(put_back, inputs=[w["folder"], w["held"]], outputs=[w["held"], w["msg"]])
