"""Build the Gradio Blocks page from the tab modules."""

from __future__ import annotations

import importlib
from pathlib import Path

import gradio as gr

from ui.context import AppContext
from ui.runs import get_manager
from ui.tab_timers import wire_tab_timers
from ui.tabs import TAB_ORDER


def _tab_modules():
    for name in TAB_ORDER:
        try:
            module = importlib.import_module(f"ui.tabs.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"ui.tabs.{name}":
                continue  # tab not written yet
            raise
        if getattr(module, "available", lambda: True)():
            yield name, module


def build_app(workspace: Path, lang: str = "en") -> gr.Blocks:
    ctx = AppContext(workspace=Path(workspace).resolve(), lang=lang)
    for sub in (ctx.runs_dir, ctx.models_dir, ctx.outputs_dir, ctx.cache_dir):
        sub.mkdir(parents=True, exist_ok=True)
    # Shared handles: "runs" the run manager (starts its scheduler once per process), "tabs" the gr.Tabs
    # (select a tab by id), "blocks" the page, "after_build" callables run once every tab exists (cross-tab wiring),
    # "building_tab"/"first_tab"/"tab_items" the tab being built, the one the page opens on, each gr.Tab by id
    # (for ui.tab_timers).
    ctx.shared["runs"] = get_manager(ctx.runs_dir)
    with gr.Blocks(title="Danlu 丹炉") as demo:
        ctx.shared["blocks"] = demo  # tabs that fill themselves when a page opens use its load event
        gr.Markdown(f"# {ctx.t('app.title')}")
        with gr.Tabs(elem_id="danlu-tabs") as tabs:
            ctx.shared["tabs"] = tabs
            items = ctx.shared["tab_items"] = {}
            for name, module in _tab_modules():
                ctx.shared.setdefault("first_tab", name)
                ctx.shared["building_tab"] = name
                with gr.Tab(ctx.t(module.TITLE), id=name, elem_id=f"tab-{name}") as items[name]:
                    module.build(ctx)
            ctx.shared["building_tab"] = None
        for wire in ctx.shared.pop("after_build", []):
            wire()
        wire_tab_timers(ctx)
    demo.danlu_ctx = ctx
    return demo
