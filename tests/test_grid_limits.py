"""Comparison grids are bounded (size, steps, number of cells) and the Compare tab draws them in a child
process, like training: a grid that hangs or crashes cannot take the web server with it."""

from __future__ import annotations

import pytest

from trainer.grid.generate import MAX_CELLS, GridRequest, generate_grid


class NoPipe:
    """Fails the test if rendering starts: the request had to be refused before."""

    def __getattr__(self, name):
        raise AssertionError(f"rendering started ({name}) for a request that is out of bounds")


def request(tmp_path, **kw) -> GridRequest:
    lora = tmp_path / "a.safetensors"
    lora.write_bytes(b"x")
    base = dict(base="unused", loras=[str(lora)], prompts="a cat", weights=[0.0, 1.0], steps=20, width=512,
                height=512)
    return GridRequest(**{**base, **kw})


@pytest.mark.parametrize("kw", [dict(width=100_000), dict(height=1_000_000_000), dict(width=100), dict(steps=100_000),
                                dict(steps=0), dict(prompts="a cat --h 1e9"), dict(prompts="a cat --s 99999"),
                                dict(weights=[i / 10 for i in range(MAX_CELLS + 1)])])
def test_out_of_bounds_requests_are_refused_before_drawing(tmp_path, kw):
    with pytest.raises(ValueError):
        generate_grid(request(tmp_path, **kw), cache_dir=tmp_path, pipe=NoPipe())


def test_compare_tab_draws_in_a_child_process(tmp_path, monkeypatch):
    from test_grid_generate import make_lora, make_tiny_base

    from tests.ui_press import press, text_of
    from trainer.grid import generate
    from ui.app import build_app

    ws = tmp_path / "ws"
    base = make_tiny_base(ws / "models" / "tiny")
    lora = make_lora(ws / "outputs" / "zk.safetensors")

    def not_here(*a, **kw):
        raise AssertionError("the grid was drawn inside the web server's process")

    monkeypatch.setattr(generate, "load_pipeline", not_here)
    demo = build_app(ws)
    shown = text_of(press(demo, "compare-run", values={
        "compare-base": str(base), "compare-paths": str(lora), "compare-weights": "0, 1", "compare-prompts": "red",
        "compare-steps": 2, "compare-width": 64, "compare-height": 64}))
    assert "Done: 2 images" in shown, shown[-2000:]
    assert len(list((ws / "outputs" / "grids").glob("grid-*.png"))) == 1
    too_big = text_of(press(demo, "compare-run", values={
        "compare-base": str(base), "compare-paths": str(lora), "compare-prompts": "red --w 100000"}))
    assert "100000" in too_big and "Done" not in too_big
