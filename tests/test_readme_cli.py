"""The README's command-line section runs as written: its first code block (the demo, offline) is executed
line by line in an empty folder, the way a new user pastes it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def runnable_block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Command line", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_demo_commands_run_as_written(tmp_path):
    lines = runnable_block()
    assert any("--preset" in line for line in lines) and any(" demo" in line for line in lines)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for line in lines:
        assert line.startswith("python -m trainer "), line
        proc = subprocess.run(line.replace("python", sys.executable, 1), shell=True, cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{line}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    # the default workspace the README names is where the demo model, the run and its LoRA went
    assert (tmp_path / "workspace" / "models" / "danlu-demo-sd15").is_dir()
    assert list((tmp_path / "workspace" / "runs").glob("*/output/*.safetensors"))
    assert (tmp_path / "kohya.toml").is_file()


def test_presets_stack_in_order_and_bad_names_are_explained(capsys):
    from trainer.__main__ import main as cli_main

    assert cli_main(["check", "--no-paths", "--preset", "expert-sd15", "--preset", "memory-6gb",
                     "--set", "network.network_dim=12"]) in (0, 1)
    out = capsys.readouterr().out
    assert "network_dim = 12" in out and "gradient_checkpointing = true" in out  # preset, then --set
    assert cli_main(["check", "--preset", "nope"]) == 2
    assert "'nope' does not exist" in capsys.readouterr().err
    assert cli_main(["check"]) == 2
    assert "--preset" in capsys.readouterr().err
