"""Laying out a Form: one collapsible section per schema group, one field (plus its error slot) per parameter.

Everything is read from the schema at build time, so a parameter added to a group model appears here with
no UI change, and one whose `planned` mark is removed appears the next time the page is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import gradio as gr

from trainer.config import schema
from trainer.config.schema import GROUP_NAMES, ParamInfo, group_info
from ui.forms.form import FAMILY_PATH, NETWORK_PATH, Form, applies
from ui.forms.widgets import make_component

# Wide widgets get a line of their own; the rest flow in a wrapping row.
WIDE_KINDS = ("list_str",)
WIDE_WIDGETS = ("textarea",)


def shown_params(level: str | None = None, groups: Iterable[str] | None = None,
                 keep: Callable[[ParamInfo], bool] | None = None) -> list[ParamInfo]:
    """The parameters a form shows: never planned ones; optionally one level, some groups, or a filter."""
    wanted = set(groups) if groups is not None else None
    out = []
    for p in schema.all_params():  # looked up at call time, so a patched or extended schema is honoured
        if p.planned or (level and p.level != level) or (wanted is not None and p.group not in wanted):
            continue
        if keep is None or keep(p):
            out.append(p)
    return out


def group_title(group: str, lang: str) -> str:
    info = group_info(group)
    return info.zh if lang == "zh" else info.en


Beside = Callable[[ParamInfo, object], object]  # (parameter, its component) -> extra components under it


def build_form(lang: str, *, family: str | None = None, level: str | None = None,
               groups: Iterable[str] | None = None, open_groups: Iterable[str] = ("model", "dataset"),
               wire: bool = True, beside: Beside | None = None) -> Form:
    """Build the form inside the current Blocks context; the summary is made unrendered (call .render()).

    `family` sets the initial visibility (default: the schema's default family). With `wire`, a change of
    the family field re-shows the fields that apply. `beside` is called in each field's box, under the field
    and its error line (e.g. the workspace list that fills a path field); it shows and hides with the field.
    """
    groups = tuple(groups) if groups is not None else None
    params = shown_params(level, groups)
    family = family or _default_family()
    form = Form(lang=lang, family=family)
    opened = set(open_groups)
    by_group: dict[str, list[ParamInfo]] = {}
    for p in params:
        by_group.setdefault(p.group, []).append(p)
    for group in [g for g in (groups or GROUP_NAMES) if g in by_group]:
        visible = any(applies(p, family) for p in by_group[group])
        with gr.Accordion(group_title(group, lang), open=group in opened, visible=visible,
                          elem_id=f"group-{group}") as acc:
            _build_group(form, by_group[group], family, beside)
        form.accordions[group] = acc
    form.summary = gr.Markdown(render=False, visible=False, elem_id="form-summary")
    if wire:
        form.wire_family()
    return form


def _default_family() -> str:
    p = schema.params_by_path().get(FAMILY_PATH)
    return p.default if p else "sd15"


def _build_group(form: Form, params: list[ParamInfo], family: str, beside: Beside | None) -> None:
    narrow = [p for p in params if not _is_wide(p)]
    wide = [p for p in params if _is_wide(p)]
    if narrow:
        with gr.Row(equal_height=False):
            for p in narrow:
                _build_field(form, p, family, 300, beside)
    for p in wide:
        with gr.Row():
            _build_field(form, p, family, 320, beside)


def _is_wide(p: ParamInfo) -> bool:
    return p.kind in WIDE_KINDS or p.widget in WIDE_WIDGETS


def _build_field(form: Form, p: ParamInfo, family: str, min_width: int, beside: Beside | None) -> None:
    network = schema.params_by_path()[NETWORK_PATH].default  # a type's own fields show once that type is chosen
    with gr.Column(min_width=min_width, visible=applies(p, family, network), elem_id=f"box-{p.group}-{p.name}") as box:
        comp = make_component(p, form.lang)
        slot = gr.Markdown("", visible=False, elem_id=f"err-{p.group}-{p.name}", elem_classes=["danlu-field-error"])
        if beside:
            beside(p, comp)
    form.params.append(p)
    form.components.append(comp)
    form.by_path[p.path] = comp
    form.errors[p.path] = slot
    form.boxes[p.path] = box
