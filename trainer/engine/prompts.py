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


def parse_prompt_line(line: str, *, negative: str, width: int, height: int, seed: int, steps: int,
                      cfg: float) -> SamplePrompt:
    parts = _OPTION.split(" " + line.strip())
    prompt = parts[0].strip()
    p = SamplePrompt(prompt, negative, width, height, seed, steps, cfg)
    for flag, value in zip(parts[1::2], parts[2::2], strict=False):
        value = value.strip()
        try:
            if flag == "n":
                p.negative = value
            elif flag == "w":
                p.width = int(value)
            elif flag == "h":
                p.height = int(value)
            elif flag == "d":
                p.seed = int(value)
            elif flag == "s":
                p.steps = int(value)
            elif flag == "l":
                p.cfg = float(value)
            elif flag == "g":
                p.guidance = float(value)
        except ValueError:
            raise ValueError(f"sampling.sample_prompts: '--{flag} {value}' in '{line.strip()}' is not a number") from None
    return p


def parse_prompts(text: str, **defaults) -> list[SamplePrompt]:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return [parse_prompt_line(ln, **defaults) for ln in lines]
