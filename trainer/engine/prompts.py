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
