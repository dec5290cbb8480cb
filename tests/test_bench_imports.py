"""Every name the benchmark scripts import from Danlu exists. Most of their imports sit inside functions that only
a full or quick run reaches, which CI's smoke run does not: a helper moved elsewhere (to_tensor, when the app
stopped importing torch) broke `run_all.py --quick`'s engine section without any test noticing."""

from __future__ import annotations

import ast
import importlib

from tests.conftest import ROOT


def _danlu_imports(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("trainer", "ui"):
            yield node.module, [a.name for a in node.names]


def _exists(module: str, name: str) -> bool:
    if hasattr(importlib.import_module(module), name):
        return True
    try:
        importlib.import_module(f"{module}.{name}")  # a submodule
        return True
    except ImportError:
        return False


def test_every_danlu_name_a_bench_script_imports_exists():
    missing = [f"{path.name}: from {module} import {name}" for path in sorted((ROOT / "bench").glob("*.py"))
               for module, names in _danlu_imports(path) for name in names if not _exists(module, name)]
    assert not missing, missing
