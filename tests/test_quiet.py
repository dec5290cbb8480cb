"""Start-up output: library noise that means nothing to a Danlu user is silenced, warnings that matter stay.

Each case runs in a fresh interpreter, since the notices come from importing the libraries (once a process).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import trainer  # noqa: F401  (installs the filters, as every entry point does)

ROOT = Path(__file__).resolve().parents[1]
NOISE = ("pip install kernels", "requires torchvision (not installed)", "should be kept in float32: []")

# What the engine, tagger and grid import, plus the two calls that printed notices on every run.
START = """
import trainer.engine.session, trainer.tagger, trainer.grid.generate
import torch
from diffusers import AutoencoderKL
from transformers import CLIPImageProcessor
AutoencoderKL(block_out_channels=(8,), norm_num_groups=8, latent_channels=4).to(torch.float32)
print("started")
"""


def run_python(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_engine_start_prints_no_library_noise():
    proc = run_python("-c", START)
    assert proc.returncode == 0 and "started" in proc.stdout, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert not [n for n in NOISE if n in out], out[-3000:]


def test_check_and_app_start_print_only_our_lines(tmp_path):
    (tmp_path / "run.toml").write_text("schema_version = 1\n", encoding="utf-8")
    proc = run_python("-m", "trainer", "check", "--config", str(tmp_path / "run.toml"))
    assert not [n for n in NOISE if n in proc.stdout + proc.stderr]
    proc = run_python("-c", "import app; app.parse_args([]); import ui.server; print('imported')")
    assert proc.returncode == 0 and not [n for n in NOISE if n in proc.stdout + proc.stderr], proc.stderr[-3000:]


def test_warnings_that_matter_still_show():
    # Collected by a handler on each logger itself: the libraries stop their records reaching the root logger.
    shown: list[str] = []
    catch = logging.Handler()
    catch.emit = lambda record: shown.append(record.getMessage())
    cast, bnb = logging.getLogger("diffusers.models.modeling_utils"), logging.getLogger("bitsandbytes.cextension")
    for logger in (cast, bnb):
        logger.addHandler(catch)
    try:
        cast.warning("There are modules in AutoencoderKL that should be kept in float32: ['encoder']. Casting ...")
        cast.warning("There are modules in AutoencoderKL that should be kept in float32: []. Casting ...")
        bnb.warning("The installed version of bitsandbytes was compiled without GPU support.")
    finally:
        for logger in (cast, bnb):
            logger.removeHandler(catch)
    assert len(shown) == 2 and "['encoder']" in shown[0] and "without GPU support" in shown[1]
