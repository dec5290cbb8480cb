"""A "datasets in the workspace" dropdown beside a tab's dataset-folder box: choosing one fills the box.

Every tab that takes a dataset folder calls `dataset_picker(ctx, box)`; the list comes from
trainer.datasets.list_datasets (one rule), is read again on page load, and the Dataset tab refreshes every
picker right after an upload (see `refresh_targets`), so a new dataset is selectable everywhere at once.
"""

from __future__ import annotations

import gradio as gr

from trainer.datasets import list_datasets

PICKERS = "dataset_pickers"  # ctx.shared key: every picker on the page


def choices(ctx) -> list[tuple[str, str]]:
    return [(p.name, str(p)) for p in list_datasets(ctx.workspace)]


def refresh(ctx) -> dict:
    return gr.update(choices=choices(ctx), value=None)


def dataset_picker(ctx, box: gr.Textbox, elem_id: str) -> gr.Dropdown:
    """Place the dropdown here; picking a dataset writes its folder into `box` (which stays editable)."""
    picker = gr.Dropdown(choices(ctx), value=None, label=ctx.t("dataset.picker"), info=ctx.t("dataset.picker_info"),
                         elem_id=elem_id, interactive=True)
    picker.input(lambda value: value if value else gr.skip(), inputs=picker, outputs=box)
    gr.on(None, lambda: refresh(ctx), outputs=picker, show_progress="hidden")  # on page load
    ctx.shared.setdefault(PICKERS, []).append(picker)
    return picker


def refresh_targets(ctx) -> list[gr.Dropdown]:
    return list(ctx.shared.get(PICKERS, []))
