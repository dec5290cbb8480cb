"""bench/speed_switches.py measures what the "fastest" preset turns on, each switch in its own run, and the runs
really have their switch (the engine's own warnings about a switch reach the row)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import run_all, speed_switches  # noqa: E402
from trainer.config.fastest import for_gpu  # noqa: E402
from trainer.config.presets import get_preset  # noqa: E402
from trainer.engine import speed  # noqa: E402


def test_every_switch_of_the_fastest_preset_is_measured_once(monkeypatch):
    monkeypatch.setattr(speed, "detect_gpu", lambda: None)
    preset = get_preset("fastest").overlay["speed"]
    rows = dict(speed_switches.settings())
    assert list(rows)[0] == "baseline" and rows["baseline"] == {}
    singles = [o for n, o in rows.items() if n != "baseline" and "preset" not in n and "cache" not in n]
    assert sorted(k for o in singles for k in o) == sorted(preset)  # each key once, at the preset's value
    assert all(preset[k] == v for o in singles for k, v in o.items())
    assert rows["fastest preset, as cut for this machine"] == for_gpu({"speed": preset}, None)["speed"]
    assert {"cache_text_encoder_outputs", "cache_latents"} <= {k for n, o in rows.items() if "cache" in n for k in o}
    assert not any("compile_blocks" in o for o in dict(speed_switches.settings(compile_blocks=False)).values())


def test_smoke_runs_the_switches_and_reports_what_the_engine_said(tmp_path, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("bf16 runs on a GPU: no warning to see")
    monkeypatch.setitem(run_all.SIZES["smoke"], "switches", ["fused_optimizer", "mixed_precision"])
    monkeypatch.setitem(run_all.SIZES["smoke"], "steps", 3)  # what is tested is the wiring, not the figures
    measured, table_rows = [], run_all.switch_rows

    def keep_measured(rows, label):  # the rows as measured, before they become table lines
        measured.extend(rows)
        return table_rows(rows, label)

    monkeypatch.setattr(run_all, "switch_rows", keep_measured)
    out = tmp_path / "rows.json"
    assert run_all.main(["--smoke", "--only", "switches", "--json", str(out)]) == 0
    rows = {r["measurement"]: r["value"] for r in json.loads(out.read_text())["rows"]}
    assert set(rows) - {k for k in rows if k.startswith("baseline (baseline runs ")} == {"fused_optimizer=True",
                         "mixed_precision=bf16 (the engine warned: mixed_precision bf16 needs a GPU; this ru...)"}
    assert rows[next(k for k in rows if k.startswith("baseline"))].startswith("1.000x")
    assert all(float(v.split("x")[0]) > 0 for v in rows.values())

    bf16 = next(r for r in measured if r["setting"] == "mixed_precision=bf16")
    assert "the engine warned: mixed_precision bf16 needs a GPU" in bf16["note"]  # the run had the switch
    # B S1 B S2 B: a baseline run before the first switch and after each
    assert measured[0]["note"].startswith("baseline runs") and len(measured[0]["runs_cpu_s"]) == 3


def test_latent_cache_runs_encode_once_or_every_step(tmp_path):
    from bench import latent_cache

    model, data = speed_switches.prepare(tmp_path, "sd15", "tiny")
    r = latent_cache.measure(model, data, tmp_path, "sd15", "tiny", steps=2)
    assert r["speedup"] > 0 and r["cached"]["cpu_s"] > 0 and r["uncached"]["cpu_s"] > 0
    logs = {c: (tmp_path / f"cache-sd15-tiny-64-{c}" / "train.log").read_text() for c in (True, False)}
    assert "caching latents" in logs[True] and "caching latents" not in logs[False]
