"""Deleting a run from the Runs tab (frees the disk of a rented machine without a shell): the first press says
what goes and how much, a second press on the same run deletes it. The manager refuses running and queued runs."""

from __future__ import annotations

import gradio as gr

from trainer.markdown import escape


def build_delete(t) -> dict:
    with gr.Row():
        button = gr.Button(t("runs.delete"), variant="secondary", scale=0, min_width=200, elem_id="runs-delete")
        msg = gr.Markdown("", elem_id="runs-delete-msg")
    return {"button": button, "msg": msg, "armed": gr.State(None)}


def wire_delete(t, mgr, d: dict, picked: gr.Dropdown, lists: list, lists_now) -> None:
    """After a delete `lists` get `lists_now(None)`: the tab's lists as they are then, with the run its monitor
    follows picked."""

    idle = gr.update(value=t("runs.delete"), variant="secondary")

    def press(run_id, armed):
        keep = [gr.skip()] * len(lists)
        if not run_id:
            return [None, t("runs.delete_pick"), idle, *keep]
        if armed != run_id:
            size = _mb(mgr.disk_bytes(run_id))
            return [run_id, t("runs.delete_confirm", run=escape(run_id), size=size),
                    gr.update(value=t("runs.delete_again"), variant="stop"), *keep]
        try:
            freed = mgr.delete(run_id)
        except (ValueError, OSError) as exc:
            return [None, t("runs.delete_refused", error=escape(exc)), idle, *keep]
        return [None, t("runs.deleted", run=escape(run_id), size=_mb(freed)), idle, *lists_now(None)]

    d["button"].click(press, [picked, d["armed"]], [d["armed"], d["msg"], d["button"], *lists])

    def disarm(run_id, armed):  # another run picked: the question asked about the previous one no longer stands
        if armed is None or armed == run_id:  # also after a delete, whose message stays
            return gr.skip(), gr.skip(), gr.skip()
        return None, "", idle

    picked.change(disarm, [picked, d["armed"]], [d["armed"], d["msg"], d["button"]], queue=False)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
