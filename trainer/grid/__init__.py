"""LoRA comparison grids: rows = LoRA files, columns = weights, the same prompt and seed throughout.

`generate_grid(GridRequest(...), cache_dir=...) -> GridResult` (torch and diffusers are imported on use).
"""

from trainer.grid.generate import (
    DEFAULT_WEIGHTS,
    GridRequest,
    GridResult,
    generate_grid,
    load_pipeline,
    parse_weights,
    render_one,
)
from trainer.grid.render import render_block, stack

__all__ = [
    "DEFAULT_WEIGHTS", "GridRequest", "GridResult", "generate_grid", "load_pipeline", "parse_weights",
    "render_block", "render_one", "stack",
]
