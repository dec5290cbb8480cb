"""Sample prompts in sd-scripts' syntax: one a line, inline --n/--w/--h/--d/--s/--l/--g options, # comments."""

from __future__ import annotations

import re
from dataclasses import dataclass

_OPTION = re.compile(r"\s--([nwhdslg])\s+")


@dataclass
class SamplePrompt:
    prompt: str
    negative: str
    width: int
    height: int
    seed: int
    steps: int
    cfg: float
    guidance: float | None = None


# sd-scripts' inline options: flag -> (SamplePrompt field, type)
OPTIONS = {"n": ("negative", str), "w": ("width", int), "h": ("height", int), "d": ("seed", int),
           "s": ("steps", int), "l": ("cfg", float), "g": ("guidance", float)}


# What a preview or grid image may ask for: the schema's ranges of the matching sampling.* settings (an
# inline --h 1e9 or --s 100000 would hang or exhaust the machine). Sides must be multiples of 8 (the VAE).
LIMITED = {"width": "sampling.sample_width", "height": "sampling.sample_height", "steps": "sampling.sample_steps",
           "cfg": "sampling.sample_cfg"}


def limits() -> dict[str, tuple[float, float]]:
    from trainer.config.schema import params_by_path

    return {name: (params_by_path()[path].ge, params_by_path()[path].le) for name, path in LIMITED.items()}


def prompt_problems(p: SamplePrompt) -> list[str]:
    """What is out of range in `p`, as readable sentences (empty when all is well)."""
    out = []
    for name, (low, high) in limits().items():
        value = getattr(p, name)
        if not low <= value <= high:  # also catches NaN
            out.append(f"{name} {value} is outside {low}..{high}")
    out += [f"{name} {getattr(p, name)} is not a multiple of 8" for name in ("width", "height")
            if getattr(p, name) % 8]
    return out


def parse_prompt_line(line: str, *, negative: str, width: int, height: int, seed: int, steps: int,
                      cfg: float) -> SamplePrompt:
    parts = _OPTION.split(" " + line.strip())
    p = SamplePrompt(parts[0].strip(), negative, width, height, seed, steps, cfg)
    for flag, value in zip(parts[1::2], parts[2::2], strict=False):
        field, kind = OPTIONS[flag]
        try:
            setattr(p, field, kind(value.strip()))
        except ValueError:
            raise ValueError(f"sampling.sample_prompts: '--{flag} {value.strip()}' in '{line.strip()}' is not a "
                             "number") from None
    return p


def parse_prompts(text: str, **defaults) -> list[SamplePrompt]:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return [parse_prompt_line(ln, **defaults) for ln in lines]
