"""Workspace pickers beside a tab's path boxes: "datasets in the workspace" and "models in the workspace".

A tab places one under a path field whose schema parameter `picks` a list (`field_with_list`, `field_picker`),
or beside a box of its own (`dataset_picker`). Choosing an entry fills the box (which stays editable). The lists
come from trainer.datasets.listing (one rule each), are read again on page load, and the Dataset tab refreshes
every picker right after an upload or a download (see `refresh_outputs`), so a new dataset or model is
selectable everywhere at once.
"""

from __future__ import annotations

import contextlib

import gradio as gr

from trainer.datasets.listing import list_datasets, list_models

PICKERS = "dataset_pickers"  # ctx.shared key: every dataset picker on the page
MODEL_PICKERS = "model_pickers"
MODEL_LISTS = "model_lists"  # (dropdown, choices function) of tabs with their own model list (Novice)


def choices(ctx) -> list[tuple[str, str]]:
    return [(p.name, str(p)) for p in list_datasets(ctx.workspace)]


def model_choices(ctx) -> list[tuple[str, str]]:
    return [(p.name, str(p)) for p in list_models(ctx.models_dir)]


def refresh(ctx) -> dict:
    return gr.update(choices=choices(ctx), value=None)


def _picker(ctx, box: gr.Textbox, elem_id: str, key: str, list_fn, label: str, info: bool = True) -> gr.Dropdown:
    picker = gr.Dropdown(list_fn(ctx), value=None, label=ctx.t(label), elem_id=elem_id, interactive=True,
                         info=ctx.t(f"{label}_info") if info else None)
    picker.input(lambda value: value if value else gr.skip(), inputs=picker, outputs=box)
    if PICKERS not in ctx.shared and MODEL_PICKERS not in ctx.shared:  # the page's first picker
        ctx.shared.setdefault("after_build", []).append(lambda: _wire_page_load(ctx))
    ctx.shared.setdefault(key, []).append(picker)
    return picker


def _wire_page_load(ctx) -> None:
    """Every picker re-lists on page load in one event: the browser redraws the loading state of all the page's
    components for each event it runs, so ten pickers with a load event each cost seconds of a page load."""
    targets = _pickers_of(ctx, "dataset") + _pickers_of(ctx, "model")

    def fill():
        lists = {list_fn: list_fn(ctx) for list_fn in {fn for _, fn in targets}}  # each folder read once
        return [gr.update(choices=lists[list_fn], value=None) for _, list_fn in targets]

    ctx.shared["blocks"].load(fill, outputs=[p for p, _ in targets], show_progress="hidden")


def _pickers_of(ctx, kind: str) -> list:
    """(picker, choices function) of every picker of `kind` ("dataset" or "model") on the page."""
    if kind == "dataset":
        return [(p, choices) for p in ctx.shared.get(PICKERS, [])]
    return [(p, model_choices) for p in ctx.shared.get(MODEL_PICKERS, [])]


def dataset_picker(ctx, box: gr.Textbox, elem_id: str) -> gr.Dropdown:
    """Place the dropdown here; picking a dataset writes its folder into `box`."""
    return _picker(ctx, box, elem_id, PICKERS, choices, "dataset.picker")


def field_picker(ctx, p, box: gr.Textbox, prefix: str) -> gr.Dropdown | None:
    """Under a path field whose parameter `picks` a workspace list (schema), the list that fills it:
    id `<prefix>-<name>-picker`. None for other fields."""
    if not p.picks:
        return None
    key, list_fn = (PICKERS, choices) if p.picks == "datasets" else (MODEL_PICKERS, model_choices)
    return _picker(ctx, box, f"{prefix}-{p.name}-picker", key, list_fn, f"dataset.field_picker_{p.picks}",
                   info=False)


def field_with_list(ctx, p, prefix: str, **component):
    """The form field of parameter `p` (ui.forms.make_component, id `<prefix>-<group>-<name>`), with the workspace
    list that fills it in the same box when `p` picks one; returns the field."""
    from ui.forms import make_component

    with gr.Column() if p.picks else contextlib.nullcontext():
        box = make_component(p, ctx.lang, elem_prefix=prefix, **component)
        field_picker(ctx, p, box, prefix)
    return box


def refresh_outputs(ctx, kind: str):
    """(outputs, fn) that re-list every picker of `kind` ("dataset" or "model") on the page."""
    targets = _pickers_of(ctx, kind)
    if kind == "model":
        targets += [(dd, lambda _ctx, fn=fn: fn()) for dd, fn in ctx.shared.get(MODEL_LISTS, [])]
    outputs = [t[0] for t in targets]

    def fn():
        updates = [gr.update(choices=list_fn(ctx)) for _, list_fn in targets]
        return updates[0] if len(updates) == 1 else updates

    return outputs, fn
