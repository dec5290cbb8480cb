"""User and message text in Markdown output keeps every character (issue 10.6), and says things once."""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

from markdown_it import MarkdownIt

from trainer.config import Finding
from trainer.data.problems import Problem
from trainer.doctor import check_dataset, render_markdown
from trainer.engine.reporter import Reporter
from trainer.events import RunSummary
from ui.forms.feedback import slot_text, summary_text
from ui.i18n import translate
from ui.runs.view import status_md

MD = MarkdownIt("commonmark", {"html": True})  # like the page: raw HTML in Markdown is rendered


def shown(markdown: str) -> str:
    """The text a reader sees: Markdown rendered, tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", MD.render(markdown)))


def t(key: str, **fmt) -> str:
    return translate(key, "en", **fmt)


def test_doctor_on_a_missing_folder_keeps_the_layout_and_says_it_once(tmp_path):
    folder = tmp_path / "missing"
    text = shown(render_markdown(check_dataset(str(folder), caption_ext=".txt", trigger="", batch_size=1,
                                               resolution=(512, 512)), "en"))
    assert f"training folder {folder} does not exist; expected sub-folders named <repeats>_<name>" in text
    assert text.count("e.g. " + str(folder / "10_mychar")) == 1, text


def test_run_verdict_keeps_angle_brackets_in_hint_and_warnings():
    s = RunSummary()
    s.status, s.message = "failed", "no usable images in /d; expected sub-folders named <repeats>_<name>"
    s.hint = "rename <name> to 10_<name>"
    s.warnings = ["skipped <b>bold</b>_file_"]
    text = shown(status_md(t, s))
    assert "<repeats>_<name>" in text and "rename <name> to 10_<name>" in text
    assert "skipped <b>bold</b>_file_" in text


def test_form_findings_keep_what_the_user_typed():
    f = Finding("error", "network.network_dim", "'<b>8</b>_x_' is not a number", "'<b>8</b>_x_' 不是数字")
    assert "'<b>8</b>_x_' is not a number" in shown(slot_text([f], "en"))
    assert "'<b>8</b>_x_' is not a number" in shown(summary_text([f], "en"))


def test_console_prints_a_problem_hint_once(tmp_path):
    console = io.StringIO()
    rep = Reporter(tmp_path, None, console=console)
    problem = Problem(str(tmp_path / "a.png"), "cannot read image: truncated", "re-save or remove the file")
    from trainer.engine.data import report_problem

    report_problem(rep, problem)
    rep.close()
    assert console.getvalue().count("re-save or remove the file") == 1, console.getvalue()
    assert Path(problem.file).name in console.getvalue()


def test_status_marks_carry_words_not_only_emoji(tmp_path):
    """Without an emoji font the marks render as boxes (issue 10.13): each says Error/Warning in words too."""
    report = check_dataset(str(tmp_path / "missing"), caption_ext=".txt", trigger="", batch_size=1,
                           resolution=(512, 512))
    assert "Error:" in shown(render_markdown(report, "en")) and "错误：" in shown(render_markdown(report, "zh"))
    s = RunSummary()
    s.status, s.warnings = "finished", ["low disk space"]
    assert "Warning: low disk space" in shown(status_md(t, s))


def test_a_tab_failure_says_error_and_keeps_its_text():
    from ui.messages import failure

    text = shown(failure(t, ValueError("no images in /d; expected sub-folders named <repeats>_<name>")))
    assert "Error: no images in /d; expected sub-folders named <repeats>_<name>" in text


def test_console_prints_a_warning_hint_on_its_own_line(tmp_path):
    """A warning and its hint read as two statements, not one run-on sentence ("...on the CPU Set ...")."""
    console = io.StringIO()
    rep = Reporter(tmp_path, None, console=console)
    rep.warning("training on the CPU", "Set speed.mixed_precision = no.")
    rep.warning("no hint here")
    rep.close()
    assert console.getvalue().splitlines() == ["[danlu] warning: training on the CPU",
                                               "[danlu] hint: Set speed.mixed_precision = no.",
                                               "[danlu] warning: no hint here"]


def test_novice_plan_keeps_the_dataset_error_and_skipped_items(tmp_path):
    """The Novice plan said "expected sub-folders named" and stopped: <repeats>_<name> was read as HTML tags."""
    from trainer.config import TrainConfig, apply_overlay
    from ui.tabs import novice

    class Ctx:
        t = staticmethod(t)

    w = {"ctx": Ctx()}
    missing = apply_overlay(TrainConfig(), {"dataset": {"train_data_dir": str(tmp_path / "missing")}})
    _, problem = novice.dataset_problem(w, missing)
    assert "expected sub-folders named <repeats>_<name>" in shown(problem), problem

    folder = tmp_path / "data" / "2_x"
    folder.mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (64, 64)).save(folder / "a.png")
    (folder / "*odd*_name_.png").write_bytes(b"not an image")  # a skipped item whose name is Markdown
    cfg = apply_overlay(TrainConfig(), {"dataset": {"train_data_dir": str(folder.parent)}})
    plan, _ = novice.dataset_problem(w, cfg)
    assert plan.problems and "*odd*_name_.png" in plan.problems[0], plan.problems
    assert "*odd*_name_.png" in shown(novice.skipped_line(t, plan)), novice.skipped_line(t, plan)


def test_tag_editor_messages_keep_tags_and_file_names(tmp_path):
    """Tags such as >_< and ^_^ (WD tags) and file or folder names with * or <> show as typed in the Tag Editor's
    Markdown: the bulk message, undo/redo, the loaded folder, the image's name, the skipped-file notice."""
    from PIL import Image

    from ui.tabs.tag_editor_events import INPUT_KEYS, VIEW_KEYS, Wiring, _apply, _undo_redo
    from ui.tabs.tag_editor_session import Session

    root = tmp_path / "<set>_*wip*_"
    root.mkdir()
    Image.new("RGB", (32, 32)).save(root / "*a*_b_.png")
    (root / "*a*_b_.txt").write_text(">_<, ^_^, solo")
    Image.new("RGB", (32, 32)).save(root / "<odd>.png")
    (root / "<odd>.txt").symlink_to(root / "*a*_b_.txt")  # a linked caption is skipped, and said so

    class Ctx:
        t, workspace = staticmethod(t), tmp_path / "ws"

    w = {k: k for k in {*INPUT_KEYS, *VIEW_KEYS}} | {"ctx": Ctx()}
    x = Wiring(w, tmp_path / "thumbs")
    f = {k: None for k in INPUT_KEYS} | {"op": "delete", "op_tags": ">_<, ^_^", "freq_search": ""}
    s = Session()
    out = x._call(lambda sess, _: sess.load(str(root), ".txt", False, ", "), f | {"state": s}, None, True)
    assert "<odd>.txt" in shown(out["msg"]), out["msg"]
    assert f"in {root}" in shown(out["status"]), out["status"]
    assert "*a*_b_.png" in shown(out["where"]), out["where"]
    message = _apply(s, f, t)
    assert "delete: >_<, ^_^" in shown(message), message
    assert "Undone: delete: >_<, ^_^" in shown(_undo_redo(s.undo(), "undone", "nothing_undo", t))


def test_links_in_a_message_stay_whole_links():
    """The page's Markdown turns bare URLs into links and took an escaped ')' after one into the link:
    'https://huggingface.co\\' and 'https://hf\\-mirror.com\\'. Escaped text gives each URL as a CommonMark
    autolink instead, and everything around it as written."""
    from trainer.markdown import escape

    text = ("the Hugging Face Hub (https://huggingface.co) is unreachable; set HF_ENDPOINT to a mirror "
            "(e.g. HF_ENDPOINT=https://hf-mirror.com/a_b?x=1), then try https://x.org.")
    rendered = MD.render(escape(text))
    assert re.findall(r'href="([^"]+)"', rendered) == ["https://huggingface.co", "https://hf-mirror.com/a_b?x=1",
                                                      "https://x.org"]
    assert shown(escape(text)).strip() == text
