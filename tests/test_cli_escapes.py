"""The CLI never passes control characters from captions or file names to the terminal (no escape
sequence injection): they are printed escaped, visibly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

from trainer.cli._safe_output import escape_controls

ROOT = Path(__file__).resolve().parent.parent
NASTY = "\x1b]0;owned\x07\x1b[2J\x08\u202e"


def test_escape_controls_keeps_text_and_layout():
    assert escape_controls("a cat, 猫\tx\n") == "a cat, 猫\tx\n"
    shown = escape_controls("red" + NASTY)
    assert "\x1b" not in shown and "\x07" not in shown and "\x08" not in shown and "\u202e" not in shown
    assert shown.startswith("red\\u001b]0;owned\\u0007") and "\\u202e" in shown


def test_tags_cli_prints_a_hostile_caption_escaped(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    name = "img\x1b[31m"
    Image.new("RGB", (8, 8)).save(folder / f"{name}.png")
    (folder / f"{name}.txt").write_text(f"cat, {NASTY}evil", encoding="utf-8")
    (folder / "sub\x1b[5m").mkdir()  # a hostile folder name, in an error message
    for argv in (["tags", "freq", str(folder)], ["check-data", str(folder / "sub\x1b[5m")]):
        proc = subprocess.run([sys.executable, "-m", "trainer", *argv], cwd=ROOT, capture_output=True, timeout=120)
        out = proc.stdout + proc.stderr
        assert b"\x1b" not in out and b"\x07" not in out and b"\x08" not in out, (argv, out[-500:])
        assert b"\\u001b" in out, (argv, out[-500:])
