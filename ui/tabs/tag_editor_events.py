"""Callbacks of the Tag Editor tab. Each takes the dict of inputs and returns a dict of widget updates.

Errors from the engine (bad folder, bad regex, files changed on disk) become a message in the tab
instead of a server traceback.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from trainer.markdown import escape
from trainer.tags.save import ConflictError
from ui.tabs.tag_editor_session import Notice, Session, op_from_form

INPUT_KEYS = ("state", "folder", "ext", "sep", "recursive", "f_all", "f_any", "f_none", "f_text", "freq_search",
              "op", "op_tags", "op_front", "op_old", "op_new", "op_pattern", "op_repl", "op_whole",
              "encoding", "backup", "force", "img_tags", "caption")
VIEW_KEYS = ("state", "status", "unsaved", "msg", "gallery", "page_info", "freq", "f_all", "f_any", "f_none",
             "preview", "image", "where", "img_tags", "caption")
OP_KEYS = ("op_tags", "op_front", "op_old", "op_new", "op_pattern", "op_repl", "op_whole")
OP_FIELDS = {"delete": {"op_tags"}, "add": {"op_tags", "op_front"}, "replace": {"op_old", "op_new"},
             "regex": {"op_pattern", "op_repl", "op_whole"}, "front": {"op_tags"}}
_USER_ERRORS = (ValueError, OSError, ConflictError)


def form_op(sess: Session, f: dict):
    sep = sess.ds.separator if sess.ds else ", "
    return op_from_form(f["op"], f["op_tags"], f["op_front"], f["op_old"], f["op_new"], f["op_pattern"],
                        f["op_repl"], f["op_whole"], separator=sep)


class Wiring:
    def __init__(self, w: dict, thumbs_dir: Path):
        self.w, self.t, self.thumbs = w, w["ctx"].t, thumbs_dir
        self.backups = w["ctx"].workspace / "backups" / "captions"
        self.inputs = {w[k] for k in INPUT_KEYS}
        self.views = [w[k] for k in VIEW_KEYS]

    def form(self, data: dict) -> dict:
        f = {k: data[self.w[k]] for k in INPUT_KEYS}
        f["state"] = f["state"] or Session()  # each browser session gets its own
        return f

    def run(self, action, full: bool = True):
        """Wrap action(sess, form) -> message into a callback that re-renders the views."""
        def fn(data: dict):
            return self._call(action, data, None, full)
        return fn

    def run_select(self, action, full: bool = False):
        def fn(data: dict, evt: gr.SelectData):
            return self._call(action, data, evt, full)
        return fn

    def _call(self, action, data: dict, evt, full: bool) -> dict:
        f = self.form(data)
        sess: Session = f["state"]
        try:
            message = (action(sess, f, evt) if evt is not None else action(sess, f)) or ""
            if isinstance(message, Notice):  # returned, not raised: the action succeeded with something to say
                message = self.notice_text(message)
        except Notice as exc:
            message, full = self.notice_text(exc), False
        except _USER_ERRORS as exc:
            message, full = self.t("tag_editor.error", msg=escape(exc)), False
        return self.render(sess, f, message, full)

    def notice_text(self, notice: Notice) -> str:
        """The notice in the UI's language; its file names and counts shown as they are (Markdown escaped)."""
        return self.t(f"tag_editor.{notice.key}", **{k: escape(v) if isinstance(v, str) else v
                                                     for k, v in notice.fmt.items()})

    def render(self, sess: Session, f: dict, message: str, full: bool) -> dict:
        w, t = self.w, self.t
        ds = sess.ds
        out = {w["state"]: sess, w["msg"]: message, w["unsaved"]: unsaved_html(t, ds.unsaved_count if ds else 0)}
        out[w["status"]] = (t("tag_editor.status_loaded", n=len(ds), folder=escape(ds.root), shown=len(sess.shown))
                            if ds is not None else t("tag_editor.status_empty"))
        out[w["gallery"]] = sess.gallery(self.thumbs)
        out[w["page_info"]] = t("tag_editor.page_info", page=sess.page + 1, pages=sess.page_count)
        out[w["freq"]] = self.freq_frame(sess, f["freq_search"])
        choices = sess.tag_choices() if full else None
        for key, value in (("f_all", sess.flt.all_of), ("f_any", sess.flt.any_of), ("f_none", sess.flt.none_of)):
            out[w[key]] = gr.update(value=list(value), **({"choices": choices} if full else {}))
        out[w["preview"]] = self.preview_text(sess, f)
        image, tags, caption, where = sess.current_view(self.thumbs)
        out[w["image"]], out[w["where"]], out[w["caption"]] = image, escape(where), caption
        tag_choices = list(dict.fromkeys(tags + (choices or [])))
        out[w["img_tags"]] = gr.update(value=tags, **({"choices": tag_choices} if full else {}))
        return out

    def freq_frame(self, sess: Session, search: str) -> pd.DataFrame:
        cols = [self.t("tag_editor.freq_tag"), self.t("tag_editor.freq_count")]
        return pd.DataFrame(sess.freq_rows(search), columns=cols)

    def preview_text(self, sess: Session, f: dict) -> str:
        if sess.ds is None:
            return ""
        try:
            n = sess.preview(form_op(sess, f))
        except ValueError:
            return ""  # the form is not complete yet
        return self.t("tag_editor.preview", n=n, shown=len(sess.shown))


def wire(w: dict, thumbs_dir: Path) -> None:
    x = Wiring(w, thumbs_dir)
    t = x.t

    def on(event, action, full=True, select=False):
        fn = x.run_select(action, full) if select else x.run(action, full)
        event(fn, inputs=x.inputs, outputs=x.views, show_progress="minimal")

    on(w["load"].click, lambda s, f: s.load(f["folder"], f["ext"], f["recursive"], f["sep"]))
    on(w["folder"].submit, lambda s, f: s.load(f["folder"], f["ext"], f["recursive"], f["sep"]))
    set_filter = lambda s, f: s.set_filter(f["f_all"], f["f_any"], f["f_none"], f["f_text"])  # noqa: E731
    for key in ("f_all", "f_any", "f_none"):
        on(w[key].input, set_filter, full=False)
    on(w["f_text"].submit, set_filter, full=False)
    on(w["f_clear"].click, lambda s, f: s.set_filter(), full=False)
    on(w["freq"].select, lambda s, f, e: s.add_filter_tag(_clicked_tag(s, f, e)), full=False, select=True)
    w["freq_search"].input(lambda data: x.freq_frame(x.form(data)["state"], data[w["freq_search"]]),
                           inputs=x.inputs, outputs=w["freq"], show_progress="hidden")
    on(w["page_prev"].click, lambda s, f: s.turn_page(-1), full=False)
    on(w["page_next"].click, lambda s, f: s.turn_page(1), full=False)
    on(w["gallery"].select, lambda s, f, e: s.select_on_page(e.index), full=False, select=True)
    on(w["prev"].click, lambda s, f: s.step(-1), full=False)
    on(w["next"].click, lambda s, f: s.step(1), full=False)
    on(w["img_tags"].input, lambda s, f: s.edit_current(list(f["img_tags"] or [])) and "")
    on(w["caption_apply"].click, lambda s, f: _apply_caption(s, f, t))
    on(w["apply"].click, lambda s, f: _apply(s, f, t))
    on(w["undo"].click, lambda s, f: _undo_redo(s.undo(), "undone", "nothing_undo", t))
    on(w["redo"].click, lambda s, f: _undo_redo(s.redo(), "redone", "nothing_redo", t))
    on(w["save"].click, lambda s, f: _save(s, f, t, x.backups))

    op_outputs = [w[k] for k in OP_KEYS] + [w["preview"]]

    def on_op(data: dict) -> dict:
        f = x.form(data)
        shown = OP_FIELDS.get(f["op"], set())
        out = {w[k]: gr.update(visible=k in shown) for k in OP_KEYS}
        out[w["preview"]] = x.preview_text(f["state"], f)
        return out

    # .change, not .input: pasted or autofilled values must update the preview too.
    for key in ("op", *OP_KEYS):
        w[key].change(on_op, inputs=x.inputs, outputs=op_outputs, show_progress="hidden")


def _clicked_tag(sess: Session, f: dict, evt: gr.SelectData) -> str:
    rows = sess.freq_rows(f["freq_search"])
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    return rows[row][0] if 0 <= row < len(rows) else ""


def _apply(sess: Session, f: dict, t) -> str:
    op = form_op(sess, f)
    n = sess.apply(op)
    return t("tag_editor.applied", label=escape(op.label), n=n)


def _apply_caption(sess: Session, f: dict, t) -> str:
    """Set the shown image's caption, and say so: the button otherwise changes nothing visible."""
    changed = sess.edit_current(f["caption"] or "")
    name = escape(sess.ds.items[sess.current].rel)
    return t("tag_editor.caption_applied" if changed else "tag_editor.caption_unchanged", name=name)


def _undo_redo(label: str | None, done_key: str, none_key: str, t) -> str:
    return t(f"tag_editor.{done_key}", label=escape(label)) if label else t(f"tag_editor.{none_key}")


def _save(sess: Session, f: dict, t, backups: Path) -> str:
    report = sess.save(f["encoding"] or "keep", bool(f["backup"]), backups, bool(f.get("force")))
    if not report.written:
        return t("tag_editor.nothing_to_save")
    text = t("tag_editor.saved", n=len(report.written))
    if report.backup_dir:
        text += " " + t("tag_editor.saved_backup", path=escape(report.backup_dir))
    return text


def unsaved_html(t, n: int) -> str:
    text = t("tag_editor.unsaved", n=n) if n else t("tag_editor.all_saved")
    style = "color:#c2410c;font-weight:600" if n else "color:#15803d"
    return f'<span data-unsaved="{n}" style="{style}">{text}</span>'
