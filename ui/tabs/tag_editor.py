"""Tag Editor tab: filter a caption dataset, bulk-edit tags with undo, edit one image, save safely.

All work is done by trainer.tags through ui/tabs/tag_editor_session.py; this module only lays out widgets
and wires them. Every callback takes the dict of all inputs and returns a dict of updates.
"""

from __future__ import annotations

import gradio as gr

from trainer.tags import OP_NAMES
from ui.components.dataset_picker import dataset_picker
from ui.tabs.tag_editor_events import unsaved_html, wire

TITLE = "tag_editor.title"

# Warn before leaving the page while the indicator says there are unsaved changes.
BEFOREUNLOAD_JS = """
window.addEventListener('beforeunload', (e) => {
  const el = document.querySelector('#tag-editor-unsaved [data-unsaved]');
  if (el && parseInt(el.dataset.unsaved || '0') > 0) { e.preventDefault(); e.returnValue = ''; }
});
"""

# Gradio sizes the gallery as a fixed number of columns at least 100 px wide, which overflows a narrow
# column (the 6th thumbnail was cut off): fill the width with as many whole thumbnails as fit instead.
GALLERY_CSS = """<style>
#tag-editor-gallery .grid-container { grid-template-columns: repeat(auto-fill, minmax(96px, 1fr)) !important; }
</style>"""


def available() -> bool:
    return True


def build(ctx) -> None:
    t = ctx.t
    thumbs_dir = ctx.cache_dir / "thumbs"
    thumbs_dir.mkdir(parents=True, exist_ok=True)
    gr.set_static_paths([thumbs_dir])  # thumbnails are served as files, never re-encoded per request
    w = _layout(t, ctx)
    w["ctx"] = ctx
    wire(w, thumbs_dir)


def _layout(t, ctx) -> dict:
    w: dict = {"state": gr.State(None)}  # a Session, made on first use
    with gr.Row():
        w["folder"] = gr.Textbox(label=t("tag_editor.folder"), info=t("tag_editor.folder_info"), scale=4,
                                 elem_id="tag-editor-folder")
        w["ext"] = gr.Textbox(value=".txt", label=t("tag_editor.caption_ext"), scale=1)
        w["sep"] = gr.Textbox(value=", ", label=t("tag_editor.separator"), scale=1)
        w["recursive"] = gr.Checkbox(label=t("tag_editor.recursive"), scale=1)
        w["load"] = gr.Button(t("tag_editor.load"), variant="primary", scale=1, elem_id="tag-editor-load")
    dataset_picker(ctx, w["folder"], "tag-editor-dataset-picker")
    with gr.Row():
        w["status"] = gr.Markdown(t("tag_editor.status_empty"), elem_id="tag-editor-status")
        w["unsaved"] = gr.HTML(unsaved_html(t, 0), js_on_load=BEFOREUNLOAD_JS, head=GALLERY_CSS,
                              elem_id="tag-editor-unsaved")
    w["msg"] = gr.Markdown("", elem_id="tag-editor-msg")
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            _filter_panel(w, t)
        with gr.Column(scale=3):
            _gallery_panel(w, t)
            _bulk_panel(w, t)
        with gr.Column(scale=2, min_width=300):
            _editor_panel(w, t)
    return w


def _filter_panel(w: dict, t) -> None:
    gr.Markdown(f"### {t('tag_editor.filter_heading')}")
    for key, label in (("f_all", "filter_all"), ("f_any", "filter_any"), ("f_none", "filter_none")):
        w[key] = gr.Dropdown([], multiselect=True, allow_custom_value=True, label=t(f"tag_editor.{label}"),
                             elem_id=f"tag-editor-{key.replace('_', '-')}")
    w["f_text"] = gr.Textbox(label=t("tag_editor.filter_text"))
    w["f_clear"] = gr.Button(t("tag_editor.filter_clear"), size="sm")
    w["freq_search"] = gr.Textbox(label=t("tag_editor.freq_search"))
    w["freq"] = gr.Dataframe(headers=[t("tag_editor.freq_tag"), t("tag_editor.freq_count")],
                             datatype=["str", "number"], interactive=False, label=t("tag_editor.freq_label"),
                             max_height=600, elem_id="tag-editor-freq")


def _gallery_panel(w: dict, t) -> None:
    w["gallery"] = gr.Gallery(label=t("tag_editor.gallery"), columns=8, height=520, allow_preview=False,
                              object_fit="cover", elem_id="tag-editor-gallery")
    with gr.Row():
        w["page_prev"] = gr.Button(t("tag_editor.page_prev"), size="sm")
        w["page_info"] = gr.Markdown("", elem_id="tag-editor-page")
        w["page_next"] = gr.Button(t("tag_editor.page_next"), size="sm")


def _bulk_panel(w: dict, t) -> None:
    gr.Markdown(f"### {t('tag_editor.bulk_heading')}")
    with gr.Row():
        w["op"] = gr.Dropdown([(t(f"tag_editor.op_{n}"), n) for n in OP_NAMES], value="delete",
                              label=t("tag_editor.op"), elem_id="tag-editor-op")
        w["op_tags"] = gr.Textbox(label=t("tag_editor.op_tags"), elem_id="tag-editor-op-tags")
        w["op_front"] = gr.Checkbox(label=t("tag_editor.op_front_flag"), visible=False)
    with gr.Row():
        w["op_old"] = gr.Textbox(label=t("tag_editor.op_old"), visible=False)
        w["op_new"] = gr.Textbox(label=t("tag_editor.op_new"), visible=False)
        w["op_pattern"] = gr.Textbox(label=t("tag_editor.op_pattern"), visible=False)
        w["op_repl"] = gr.Textbox(label=t("tag_editor.op_repl"), visible=False)
        w["op_whole"] = gr.Checkbox(label=t("tag_editor.op_whole"), visible=False)
    w["preview"] = gr.Markdown("", elem_id="tag-editor-preview")
    with gr.Row():
        w["apply"] = gr.Button(t("tag_editor.apply"), variant="primary", elem_id="tag-editor-apply")
        w["undo"] = gr.Button(t("tag_editor.undo"), elem_id="tag-editor-undo")
        w["redo"] = gr.Button(t("tag_editor.redo"), elem_id="tag-editor-redo")
    with gr.Row():
        w["encoding"] = gr.Radio([(t("tag_editor.enc_keep"), "keep"), (t("tag_editor.enc_utf8"), "utf-8")],
                                 value="keep", label=t("tag_editor.encoding"))
        w["backup"] = gr.Checkbox(value=True, label=t("tag_editor.backup"))
        w["force"] = gr.Checkbox(value=False, label=t("tag_editor.force"), elem_id="tag-editor-force")
        w["save"] = gr.Button(t("tag_editor.save"), variant="primary", elem_id="tag-editor-save")


def _editor_panel(w: dict, t) -> None:
    gr.Markdown(f"### {t('tag_editor.editor_heading')}")
    w["image"] = gr.Image(type="filepath", interactive=False, show_label=False, height=360)
    w["where"] = gr.Markdown("", elem_id="tag-editor-where")
    w["img_tags"] = gr.Dropdown([], multiselect=True, allow_custom_value=True, label=t("tag_editor.image_tags"),
                                elem_id="tag-editor-img-tags")
    w["caption"] = gr.Textbox(label=t("tag_editor.caption"), lines=4, elem_id="tag-editor-caption")
    w["caption_apply"] = gr.Button(t("tag_editor.caption_apply"), size="sm")
    with gr.Row():
        w["prev"] = gr.Button(t("tag_editor.prev"))
        w["next"] = gr.Button(t("tag_editor.next"))
