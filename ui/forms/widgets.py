"""One Gradio component per schema parameter, and the conversions between config values and widget values.

The widget is chosen from the parameter's kind (and its `widget` hint); label (the humanised name in
English, the schema's `label_zh` in Chinese), help, range and step all come from the schema, so nothing
here names a parameter.
"""

from __future__ import annotations

import math
import re
import types
from typing import Any

import gradio as gr

from trainer.config import Finding, ParamInfo
from ui.i18n import translate

# Abbreviations that read wrong when only the first letter is capitalised.
_ACRONYMS = {
    "lr": "LR", "te": "TE", "vae": "VAE", "cfg": "CFG", "snr": "SNR", "unet": "U-Net", "fp16": "FP16",
    "bf16": "BF16", "fp8": "FP8", "sdpa": "SDPA", "toml": "TOML", "t5": "T5", "t5xxl": "T5-XXL", "clip": "CLIP",
    "ae": "AE", "v2": "V2", "n": "N", "te2": "TE2", "reso": "resolution", "dylora": "DyLoRA", "lycoris": "LyCORIS",
    "ia3": "IA3", "l": "L",
}


def _lenient_preprocess(self, payload: float | None) -> float | int | None:
    """gr.Number.preprocess without its range check.

    gr.Number raises gr.Error for a value outside minimum/maximum before our callback runs, which shows
    one page-wide toast and no field; letting the value through makes the schema report it next to its
    field. (Bound to each instance: a gr.Number subclass would make Gradio write a .pyi beside this file.)
    """
    if payload is None:
        return None
    return self.round_to_precision(payload, self.precision)


def field_number(**kwargs: Any) -> gr.Number:
    comp = gr.Number(**kwargs)
    comp.preprocess = types.MethodType(_lenient_preprocess, comp)
    return comp


def humanise(name: str) -> str:
    """'max_bucket_reso' -> 'Max bucket resolution'."""
    words = [_ACRONYMS.get(w, w) for w in name.split("_")]
    text = " ".join(words)
    return text[0].upper() + text[1:] if text else text


def label_of(p: ParamInfo, lang: str = "en") -> str:
    """The field's label: the schema's Chinese label for "zh", else the humanised name; plus its unit."""
    text = p.label_zh if lang == "zh" and p.label_zh else humanise(p.name)
    return text + (f" ({p.unit})" if p.unit else "")


def _float_step(p: ParamInfo) -> float:
    """A step for the number spinner: the schema's, else a tenth of the default's order of magnitude."""
    if p.step:
        return p.step
    ref = abs(p.default) if isinstance(p.default, (int, float)) and p.default else 0.1
    return 10 ** (math.floor(math.log10(ref)) - 1)


def make_component(p: ParamInfo, lang: str, *, value: Any = None, visible: bool = True, elem_prefix: str = "field",
                   **extra: Any):
    """The component for `p`, showing `value` (default: the schema default).

    Its elem_id is f"{elem_prefix}-{group}-{name}"; tabs that show the same parameter use their own prefix,
    so ids stay unique on the page."""
    shown = to_widget(p, p.default if value is None else value)
    common = dict(label=label_of(p, lang), info=p.help(lang), visible=visible,
                  elem_id=f"{elem_prefix}-{p.group}-{p.name}", **extra)
    if p.kind == "bool":
        return gr.Checkbox(value=shown, **common)
    if p.kind in ("int", "float"):
        is_int = p.kind == "int"
        return field_number(value=shown, precision=0 if is_int else None, minimum=p.ge, maximum=p.le,
                           step=(p.step or 1) if is_int else _float_step(p),
                           placeholder=translate("forms.optional_placeholder", lang) if p.optional else None,
                           **common)
    if p.kind == "choice":
        return gr.Dropdown(choices=list(p.available_choices()), value=shown, **common)
    if p.kind == "list_str":
        return gr.Textbox(value=shown, lines=3, placeholder=translate("forms.list_placeholder", lang), **common)
    if p.kind == "list_float":
        return gr.Textbox(value=shown, placeholder=translate("forms.floats_placeholder", lang), **common)
    if p.widget == "textarea":
        return gr.Textbox(value=shown, lines=5, max_lines=30, **common)
    if p.widget == "path":
        return gr.Textbox(value=shown, placeholder=translate("forms.path_placeholder", lang), **common)
    return gr.Textbox(value=shown, **common)


def to_widget(p: ParamInfo, value: Any) -> Any:
    """A config value as the widget shows it."""
    if p.kind == "list_str":
        return "\n".join(str(v) for v in value or [])
    if p.kind == "list_float":
        return ", ".join(f"{v:g}" for v in value or [])
    return value


def _finding(p: ParamInfo, key: str, **fmt: Any) -> Finding:
    return Finding("error", p.path, translate(f"forms.{key}", "en", **fmt), translate(f"forms.{key}", "zh", **fmt))


def _number(p: ParamInfo, raw: Any) -> tuple[Any, Finding | None]:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return (None, None) if p.optional else (None, _finding(p, "needs_value"))
    try:
        num = float(raw)
    except (TypeError, ValueError):
        return None, _finding(p, "not_a_number", value=raw)
    if p.kind == "float":
        return num, None
    if not num.is_integer():
        return None, _finding(p, "not_an_integer", value=raw)
    return int(num), None


def _floats(p: ParamInfo, raw: Any) -> tuple[Any, Finding | None]:
    parts = [s for s in re.split(r"[,\s]+", str(raw or "")) if s]
    try:
        return [float(s) for s in parts], None
    except ValueError:
        return None, _finding(p, "not_numbers", value=raw)


def _choice(p: ParamInfo, raw: Any) -> tuple[Any, Finding | None]:
    for c in p.choices:  # Dropdowns may hand back "75" for the int choice 75
        if raw == c or str(raw) == str(c):
            return c, None
    if raw is None and p.optional:
        return None, None
    return None, _finding(p, "not_a_choice", value=raw, choices=list(p.available_choices()))


def from_widget(p: ParamInfo, raw: Any) -> tuple[Any, Finding | None]:
    """(config value, None) or (None, a finding for this field) from what the widget holds."""
    if p.kind == "bool":
        return bool(raw), None
    if p.kind in ("int", "float"):
        return _number(p, raw)
    if p.kind == "choice":
        return _choice(p, raw)
    if p.kind == "list_str":
        return [ln.strip() for ln in str(raw or "").splitlines() if ln.strip()], None
    if p.kind == "list_float":
        return _floats(p, raw)
    return ("" if raw is None else str(raw)), None
