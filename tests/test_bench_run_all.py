"""The benchmark suite keeps working: its cheapest sections run end to end and land in the table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import run_all  # noqa: E402


def test_smoke_sections_fill_the_table_and_exit_0(tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert run_all.main(["--smoke", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    sections = {r["section"] for r in rows}
    assert sections == {"dataset scan, 40 images", "tag editor, 60 captions"}
    scan = {r["measurement"]: r for r in rows if r["section"].startswith("dataset scan")}
    assert float(scan["speed-up of the header scan"]["value"].rstrip("x")) > 1  # headers beat decoding
    assert all(r["measurement"] != "ERROR" for r in rows)
    printed = capsys.readouterr().out
    assert "speed-up of the header scan" in printed and "smoke mode" in printed


def test_the_engine_section_runs_at_smoke_size(tmp_path):
    """Issue 18's proof (engine vs bare loop vs floor) runs to its ratios; the quick and full modes had been
    stopping at an import for a day before anyone ran them. The ratio itself is noise at this size: not judged."""
    out = tmp_path / "rows.json"
    assert run_all.main(["--smoke", "--only", "engine_tiny", "--json", str(out)]) == 0
    rows = {r["measurement"]: r["value"] for r in json.loads(out.read_text())["rows"]}
    assert float(rows["engine / bare"]) > 0 and float(rows["engine / floor"]) > 1  # the adapter costs something


def test_a_broken_section_shows_in_the_table_and_fails_the_run(monkeypatch, capsys):
    def broken(mode, tmp, sets):
        raise ValueError("no such model")

    monkeypatch.setitem(run_all.SECTIONS, "scan", broken)
    assert run_all.main(["--smoke", "--only", "scan"]) == 1
    printed = capsys.readouterr().out
    assert "ERROR" in printed and "ValueError: no such model" in printed


def test_table_aligns_columns_and_marks_targets():
    rows = [run_all.Row("engine", "engine / bare", "1.010", "<= 1.05", True),
            run_all.Row("engine", "engine / floor", "1.30"),
            run_all.Row("scan, 10000 images", "speed-up", "2.0x", ">= 5x", False)]
    lines = run_all.table(rows).splitlines()
    assert lines[0].split() == ["section", "measurement", "value", "target"]
    assert lines[2].endswith("OK") and lines[4].endswith("MISS") and lines[3].endswith("1.30")
    assert len({line.index("engine /") for line in lines[2:4]}) == 1  # one column for measurements


def test_gpu_mode_refuses_clearly_without_cuda(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also checked on a machine with a GPU
    assert run_all.main(["--gpu"]) == 2
    assert "needs an NVIDIA GPU with CUDA" in capsys.readouterr().err
