"""The fuzz corpus (tests/fuzz_corpus.py) through every tool that reads user files: dataset scan, doctor,
tagger, tag editor and config check. Odd files become reported problems, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz_corpus import make_dataset, make_tomls
from trainer.config import ConfigError, check, dump_config, load_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    sub = make_dataset(base / "data")
    return base, sub


def test_scan(corpus):
    from trainer.data.scan import scan_dataset

    base, sub = corpus
    scan = scan_dataset(base / "data", recursive=True)
    names = {Path(it.path).name for it in scan.items}
    assert "good.png" in names and "zero.png" not in names and "fake.png" not in names
    assert "huge.png" not in names and "wide.png" not in names  # absurd sizes are refused at scan
    problems = " ".join(str(p) for p in scan.problems)
    for bad in ("zero.png", "fake.png", "huge.png"):
        assert bad in problems


def test_doctor(corpus):
    from trainer.doctor import check_dataset, render_markdown
    from trainer.doctor.report import render_text

    base, _ = corpus
    report = check_dataset(base / "data")
    assert render_markdown(report, "en") and render_markdown(report, "zh") and render_text(report)


def test_tagger(corpus, tmp_path):
    from trainer.tagger import TagJob, TagOptions, load_model, tag_folder
    from trainer.tagger.tiny import build_tiny_tagger

    _, sub = corpus
    build_tiny_tagger(tmp_path / "tagger", size=32)
    job = TagJob(sub, TagOptions(general_threshold=0.0, character_threshold=0.0), existing="append",
                 backup_dir=tmp_path / "backups")
    report = list(tag_folder(load_model(tmp_path / "tagger"), job))[-1]
    assert report.finished and report.written > 10
    failed = {p.name for p, _ in report.failed}
    assert {"zero.png", "fake.png", "truncated.jpg"} <= failed


def test_tag_editor(corpus, tmp_path):
    from ui.tabs.tag_editor_session import Session, op_from_form

    _, sub = corpus
    sess = Session()
    sess.load(str(sub), ".txt", True, ", ")
    assert len(sess.ds) > 20
    for page in range(sess.page_count):
        sess.page = page
        sess.gallery(tmp_path / "thumbs")  # unreadable images are left out, not raised
        for i in sess.page_indices():
            sess.current = i
            sess.current_view(tmp_path / "thumbs")
    sess.apply(op_from_form("add", "fuzzed"))
    report = sess.save("keep", True, tmp_path / "backups")
    assert report.written


@pytest.fixture(scope="module")
def tomls(tmp_path_factory):
    return make_tomls(tmp_path_factory.mktemp("tomls"))


def test_config_check_in_process(tomls):
    loaded = 0
    for path in tomls:
        try:
            cfg = load_config(path)
        except ConfigError as exc:
            assert str(exc), path
            continue
        loaded += 1
        check(cfg, for_training=True)
        dump_config(cfg)
    assert loaded >= 1


CHECK_EACH = """
import sys
from trainer.__main__ import main
for path in sys.argv[1:]:
    print(f"== {path}", flush=True)
    try:
        main(["check", "--config", path])
    except SystemExit:
        pass  # argparse's exits; anything else escapes and prints its traceback
"""


def test_check_cli_never_prints_a_traceback(tomls):
    """The hand-made ones through the verb's own entry point in one process (a process each took 13 x 1.7 s);
    the random ones ran in-process above."""
    paths = [str(p) for p in tomls[:13]]
    proc = subprocess.run([sys.executable, "-c", CHECK_EACH, *paths], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Traceback" not in out, out[-3000:]
    assert out.count("== ") == len(paths), out[-3000:]  # every file was checked
