"""TensorBoard tab: the TensorBoard that ui/server.py mounts at /tensorboard, in an iframe.

The iframe URL is relative to the page's root, so it works on localhost, behind --root-path, and
through a share link, and the browser sends the same login cookie with it.
"""

from __future__ import annotations

import gradio as gr

TITLE = "tensorboard.title"

# Gradio knows the page's root URL (with --root-path or a proxy prefix) in window.gradio_config.root;
# resolving against it keeps the iframe right even when the page URL lacks a trailing slash.
FRAME_JS = """
const frame = element.querySelector('iframe');
const root = (window.gradio_config && window.gradio_config.root) || window.location.href;
frame.src = new URL('tensorboard/', root.endsWith('/') ? root : root + '/').href;
"""
RELOAD_JS = """() => {
  const frame = document.querySelector('#tensorboard-frame iframe');
  if (frame) { frame.src = frame.src.split('#')[0]; }
}"""


def available() -> bool:
    return True


def build(ctx) -> None:
    t = ctx.t
    with gr.Row():
        gr.Markdown(t("tensorboard.about", logdir=str(ctx.runs_dir)))
        reload = gr.Button(t("tensorboard.reload"), scale=0, elem_id="tensorboard-reload")
        gr.HTML(f"<a href='tensorboard/' target='_blank' rel='noopener'>{t('tensorboard.open_new')}</a>")
    gr.HTML(
        "<iframe src='tensorboard/' title='TensorBoard' style='width:100%;height:80vh;border:0'></iframe>",
        js_on_load=FRAME_JS, elem_id="tensorboard-frame",
    )
    reload.click(None, None, None, js=RELOAD_JS)
