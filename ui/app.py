"""Build the Gradio Blocks page from the tab modules."""

from __future__ import annotations

import importlib
from pathlib import Path

import gradio as gr

from ui.context import AppContext
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
    with gr.Blocks(title="Danlu 丹炉") as demo:
        gr.Markdown(f"# {ctx.t('app.title')}")
        with gr.Tabs():
            for name, module in _tab_modules():
                with gr.Tab(ctx.t(module.TITLE), id=name, elem_id=f"tab-{name}"):
                    module.build(ctx)
    demo.danlu_ctx = ctx
    return demo
