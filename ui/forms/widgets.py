"""One Gradio component per schema parameter, and the conversions between config values and widget values.

The widget is chosen from the parameter's kind (and its `widget` hint); label (the humanised name in
English, the schema's `label_zh` in Chinese), help, range and step all come from the schema, so nothing
here names a parameter.
"""

from __future__ import annotations

import re
from typing import Any

import gradio as gr

from trainer.config import Finding, ParamInfo
from trainer.config.groups_optim import rates_of
from ui.i18n import translate

# Abbreviations that read wrong when only the first letter is capitalised.
_ACRONYMS = {
    "lr": "LR", "te": "TE", "vae": "VAE", "cfg": "CFG", "snr": "SNR", "unet": "U-Net", "fp16": "FP16",
    "bf16": "BF16", "fp8": "FP8", "sdpa": "SDPA", "toml": "TOML", "t5": "T5", "t5xxl": "T5-XXL", "clip": "CLIP",
    "ae": "AE", "v2": "V2", "n": "N", "te2": "TE2", "reso": "resolution", "dylora": "DyLoRA", "lycoris": "LyCORIS",
    "ia3": "IA3", "l": "L", "ip": "IP", "pred": "prediction",
}


def humanise(name: str) -> str:
    """'max_bucket_reso' -> 'Max bucket resolution'."""
    words = [_ACRONYMS.get(w, w) for w in name.split("_")]
    text = " ".join(words)
    return text[0].upper() + text[1:] if text else text


def label_of(p: ParamInfo, lang: str = "en") -> str:
    """The field's label: the schema's Chinese label for "zh", else the humanised name; plus its unit."""
    text = p.label_zh if lang == "zh" and p.label_zh else humanise(p.name)
    return text + (f" ({p.unit})" if p.unit else "")


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
    if p.kind in ("int", "float", "float_or_list"):
        # A text box, not gr.Number: Gradio's number box turns "no value" into 0 as soon as it is shown (an
        # unset unet_lr became 0.0) and silently drops letters. Here empty stays "not set", and whatever is
        # typed reaches from_widget, which names the field when it is not a number or out of range.
        hint = "optional_placeholder" if p.optional else "number_placeholder"
        return gr.Textbox(value=shown, placeholder=translate(f"forms.{hint}", lang, range=_range(p)).strip(),
                          elem_classes=["danlu-number"], **common)
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


def _range(p: ParamInfo) -> str:
    """'(0 – 10)' from the schema's bounds, for the placeholder of a number box."""
    lo = "" if p.ge is None else f"{p.ge:g}"
    hi = "" if p.le is None else f"{p.le:g}"
    return f"({lo} – {hi})" if lo or hi else ""


def _number_text(p: ParamInfo, value: Any) -> str:
    """A number as its box shows it: empty for "not set", floats in full (repr keeps 1e-05 exact)."""
    if value is None:
        return ""
    if p.kind in ("float", "float_or_list") and not isinstance(value, bool):
        text = repr(float(value))
        return text.removesuffix(".0")  # 2.0 reads as 2
    return str(value)


def to_widget(p: ParamInfo, value: Any) -> Any:
    """A config value as the widget shows it."""
    if p.kind in ("int", "float"):
        return _number_text(p, value)
    if p.kind == "float_or_list":  # one number, or "5e-05, 2e-05"
        return ", ".join(_number_text(p, v) for v in rates_of(value))
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
    if p.kind in ("float", "float_or_list"):
        return num, None
    if not num.is_integer():
        return None, _finding(p, "not_an_integer", value=raw)
    return int(num), None


def _parts(raw: Any) -> list[str]:
    """The numbers typed in a box, commas or spaces between them."""
    return [s for s in re.split(r"[,\s]+", str(raw or "")) if s]


def _floats(p: ParamInfo, raw: Any) -> tuple[Any, Finding | None]:
    try:
        return [float(s) for s in _parts(raw)], None
    except ValueError:
        return None, _finding(p, "not_numbers", value=raw)


def _number_or_numbers(p: ParamInfo, raw: Any) -> tuple[Any, Finding | None]:
    """One number (or empty, when optional), or several comma separated ones as a list; the schema checks
    how many and their range."""
    parts = _parts(raw)
    if len(parts) <= 1:
        value, found = _number(p, parts[0] if parts else None)
        return (None, _finding(p, "not_number_or_numbers", value=raw)) if found and parts else (value, found)
    return _floats(p, raw)


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
    if p.kind == "float_or_list":
        return _number_or_numbers(p, raw)
    if p.kind == "choice":
        return _choice(p, raw)
    if p.kind == "list_str":
        return [ln.strip() for ln in str(raw or "").splitlines() if ln.strip()], None
    if p.kind == "list_float":
        return _floats(p, raw)
    return ("" if raw is None else str(raw)), None
