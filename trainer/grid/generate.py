"""Render a LoRA comparison grid: one base model, several LoRA files, several weights, the same seed.

The base model is loaded once. Each LoRA goes through diffusers' own `load_lora_weights` (so the grid also
proves that our kohya files load where users load them), its strength is set with `set_adapters`, and it is
unloaded before the next file. Weight 0 therefore shows the base model itself, with the same noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from trainer.grid.render import render_block, stack, weight_label

DEFAULT_WEIGHTS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
# A grid is one picture held in memory and drawn cell by cell: bound it so a typo cannot run for days or
# need more memory than the machine has. Sizes, steps and CFG are bounded per prompt by the schema's
# sampling ranges (trainer.engine.prompts.prompt_problems).
MAX_CELLS = 100
MAX_GRID_PIXELS = 64 * 1024 * 1024  # all cells together: 64 cells at 1024x1024
Progress = Callable[[int, int, str], None]  # (done, total, what is being drawn)


@dataclass
class GridRequest:
    base: str
    loras: list[str]
    prompts: str  # one a line, sd-scripts syntax (--n --w --h --d --s --l), # comments
    weights: list[float] = field(default_factory=lambda: list(DEFAULT_WEIGHTS))
    negative: str = ""
    seed: int = 42
    steps: int = 20
    width: int = 512
    height: int = 512
    cfg: float = 7.0
    sampler: str = "euler_a"


@dataclass
class GridResult:
    image: Image.Image
    cells: dict[tuple[int, int, int], Image.Image]  # (prompt, lora, weight) indices -> picture
    prompts: list = field(default_factory=list)  # SamplePrompt per block


def parse_weights(text: str) -> list[float]:
    """'0, 0.5 1' -> [0.0, 0.5, 1.0]; raises ValueError naming the bad entry."""
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        weights = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"weights '{text}': write numbers separated by commas, e.g. 0, 0.5, 1") from None
    if not weights:
        raise ValueError("no weights given: write e.g. 0, 0.5, 1")
    return weights


def parse_grid_prompts(req: GridRequest) -> list:
    from trainer.engine.prompts import parse_prompts

    prompts = parse_prompts(req.prompts, negative=req.negative, width=req.width, height=req.height,
                            seed=req.seed, steps=req.steps, cfg=req.cfg)
    if not prompts:
        raise ValueError("no prompt given: write at least one line")
    return prompts


def check_request(req: GridRequest) -> list:
    """The request's prompts, parsed; ValueError naming the problem when the grid would be out of bounds."""
    from trainer.engine.prompts import prompt_problems

    prompts = parse_grid_prompts(req)
    for p in prompts:
        problems = prompt_problems(p)
        if problems:
            raise ValueError(f"prompt '{p.prompt[:40]}': {'; '.join(problems)}")
    cells = len(prompts) * len(req.loras) * len(req.weights)
    if cells > MAX_CELLS:
        raise ValueError(f"{cells} images ({len(prompts)} prompts x {len(req.loras)} LoRAs x {len(req.weights)} "
                         f"weights) is more than {MAX_CELLS} in one grid; compare fewer at a time")
    pixels = sum(p.width * p.height for p in prompts) * len(req.loras) * len(req.weights)
    if pixels > MAX_GRID_PIXELS:
        raise ValueError(f"the grid would hold {pixels:,} pixels, more than {MAX_GRID_PIXELS:,}; use fewer or "
                         "smaller images")
    return prompts


def load_pipeline(base: str, *, cache_dir: Path, sampler: str = "euler_a", status=None):
    """A text-to-image pipeline for a base model of any trainable family (hub id, diffusers folder or single
    file), built by the family as its previews are. `status(message, fraction)` hears how a hub download goes."""
    from types import SimpleNamespace

    import torch

    from trainer.families import get_family, trained_families
    from trainer.models.detect import detect_family
    from trainer.models.hub import resolve_base_model

    path = resolve_base_model(base, Path(cache_dir), status)
    name = detect_family(path)
    if name not in trained_families():
        raise ValueError(f"{base} is a {name} model; the comparison grid supports {', '.join(trained_families())} "
                         "base models")
    family = get_family(name)
    parts = family.load(SimpleNamespace(base_model=str(path), vae=""), Path(cache_dir), status)
    pipe = family.preview_pipeline(parts, family.preview_scheduler(sampler, parts.noise_scheduler))
    pipe.danlu_call_args = family.preview_call_args  # the family's guidance argument (CFG, or Flux's --g)
    pipe.set_progress_bar_config(disable=True)
    cuda = torch.cuda.is_available()
    return pipe.to("cuda", torch.float16) if cuda else pipe.to("cpu")


def render_one(pipe, prompt) -> Image.Image:
    """One picture; the generator lives on the CPU so a seed gives the same noise on every device."""
    import torch

    generator = torch.Generator("cpu").manual_seed(prompt.seed)
    with torch.no_grad():
        call_args = getattr(pipe, "danlu_call_args", lambda p: {"guidance_scale": p.cfg})(prompt)
        return pipe(prompt.prompt, negative_prompt=prompt.negative or None, width=prompt.width,
                    height=prompt.height, num_inference_steps=prompt.steps, generator=generator,
                    **call_args).images[0]


def generate_grid(req: GridRequest, *, cache_dir: Path, pipe=None, progress: Progress | None = None) -> GridResult:
    """Render every (prompt, LoRA, weight) cell and the labelled grid. `pipe` reuses a loaded base model."""
    if not req.loras:
        raise ValueError("no LoRA file chosen")
    missing = [p for p in req.loras if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"LoRA file(s) not found: {', '.join(missing)}")
    prompts = check_request(req)
    _refuse_what_diffusers_skips(req.loras)
    total, done = len(prompts) * len(req.loras) * len(req.weights), 0
    status = (lambda message, fraction: progress(0, total, message)) if progress else None
    pipe = pipe or load_pipeline(req.base, cache_dir=cache_dir, sampler=req.sampler, status=status)
    cells: dict[tuple[int, int, int], Image.Image] = {}
    for li, lora in enumerate(req.loras):
        adapter = f"grid{li}"
        pipe.load_lora_weights(str(lora), adapter_name=adapter)
        try:
            for wi, weight in enumerate(req.weights):
                pipe.set_adapters([adapter], adapter_weights=[weight])
                for pi, prompt in enumerate(prompts):
                    cells[(pi, li, wi)] = render_one(pipe, prompt)
                    done += 1
                    if progress:
                        progress(done, total, f"{Path(lora).name} @ {weight_label(weight)}")
        finally:
            pipe.unload_lora_weights()  # the next file starts from the clean base model
    return GridResult(_draw(req, prompts, cells), cells, prompts)


def _refuse_what_diffusers_skips(loras: list[str]) -> None:
    """A Flux LoKr/DoRA file (per-split modules, trainer.networks.flux_sliced) would render as the base model."""
    from trainer.networks.flux_sliced import sliced_modules
    from trainer.networks.save import read_lora

    for lora in loras:
        skipped = sliced_modules(read_lora(lora)[0])
        if skipped:
            raise ValueError(f"{Path(lora).name}: its {len(skipped)} Flux LoKr/DoRA modules ({skipped[0]}, ...) are "
                             "not loaded by diffusers' load_lora_weights, which the grid uses, so every cell would "
                             "show the base model; compare this file in ComfyUI or Forge, which load it")


def _draw(req: GridRequest, prompts: list, cells) -> Image.Image:
    rows = [Path(p).stem for p in req.loras]
    cols = [f"w = {weight_label(w)}" for w in req.weights]
    blocks = []
    for pi, prompt in enumerate(prompts):
        grid = [[cells[(pi, li, wi)] for wi in range(len(req.weights))] for li in range(len(req.loras))]
        title = f"{prompt.prompt}  (seed {prompt.seed}, {prompt.steps} steps, CFG {prompt.cfg:g})"
        blocks.append(render_block(grid, rows, cols, title))
    return stack(blocks)
