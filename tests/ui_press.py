"""Calling a tab's callbacks in-process, the way Gradio would, without a browser: build the page, find the
event a component triggers by its elem_id, fill its inputs (defaults unless given) and run it."""

from __future__ import annotations

import inspect
import re

import gradio as gr


def by_elem_id(demo: gr.Blocks, elem_id: str):
    found = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id]
    assert len(found) == 1, f"{elem_id}: {len(found)} components"
    return found[0]


def press(demo: gr.Blocks, elem_id: str, event: str = "click", values: dict | None = None, state=None) -> list:
    """Run the callback(s) `event` on `elem_id` triggers; return every value they output (all yields), as text.

    `values` maps elem_ids to input values; `state` is given to every gr.State input (default: its value)."""
    target = by_elem_id(demo, elem_id)
    fns = [f for f in demo.fns.values() if (target._id, event) in [(t[0], t[1]) for t in f.targets] and f.fn]
    assert fns, f"nothing runs on {elem_id}.{event}"
    given = {by_elem_id(demo, k)._id: v for k, v in (values or {}).items()}
    shown = []
    for f in fns:
        data = {}
        for comp in f.inputs:
            if comp._id in given:
                data[comp] = given[comp._id]
            elif isinstance(comp, gr.State):
                data[comp] = state if state is not None else comp.value
            else:
                data[comp] = comp.value
        args = [data] if f.inputs_as_dict else [data[c] for c in f.inputs]
        if "request" in inspect.signature(f.fn).parameters:  # Gradio hands the page's request to such callbacks
            args.append(gr.Request(session_hash="press"))
        result = f.fn(*args)
        results = list(result) if inspect.isgenerator(result) else [result]
        for r in results:
            items = r.values() if isinstance(r, dict) else (r if isinstance(r, (list, tuple)) else [r])
            shown += [_shown(x) for x in items]
    return shown


def _shown(value) -> str:
    """What a component shows: an update's value, else the value itself."""
    if isinstance(value, dict) and "__type__" in value:
        return str(value.get("value", ""))
    return str(value)


def text_of(outputs: list) -> str:
    """The outputs as a reader sees them: Markdown's backslash escapes (trainer.markdown) undone."""
    return _ESCAPED.sub(r"\1", "\n".join(outputs))


_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")
