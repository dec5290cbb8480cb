"""The GPU-memory badge: "≈ 7.1 GB GPU memory (this GPU: 8 GB)", with a warning when it will not fit."""

from __future__ import annotations

from trainer.markdown import escape
from trainer.memory import detect_gpu_memory, estimate_memory
from ui.i18n import translate

_DETECT = object()


def memory_estimate_markdown(cfg, lang: str = "en", gpu_gb=_DETECT) -> str:
    """Markdown for a config. `gpu_gb` overrides the detected card (None: no GPU), for tests and previews."""
    gpu = detect_gpu_memory() if gpu_gb is _DETECT else gpu_gb
    try:
        est = estimate_memory(cfg)
    except (ValueError, KeyError) as exc:  # e.g. a resolution typed half-way
        return translate("memory.invalid", lang, error=escape(exc))
    head = translate("memory.badge", lang, total=f"{est.total_gb:.1f}")
    where = translate("memory.this_gpu", lang, gpu=f"{gpu:.0f}") if gpu else translate("memory.no_gpu", lang)
    parts = " · ".join(f"{translate(f'memory.part_{name}', lang)} {gb:.1f} GB"
                       for name, gb in est.parts.items() if gb >= 0.05)
    lines = [f"**{head}** {where}", f"<small>{parts}</small>"]
    if gpu and est.total_gb > gpu:
        lines.append(translate("memory.over", lang))
    lines += [f"<small>{n.text(lang)}</small>" for n in est.notes]
    return "\n\n".join(lines)
