"""Compare LoRAs tab: a grid of images, a row per LoRA file and a column per weight, same prompt and seed.

Each grid is drawn in a child process (trainer.grid.process), like a training run, so a grid that runs out
of memory or hangs cannot take the page down; one grid at a time, since each loads a base model.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import gradio as gr
from PIL import Image

from trainer import sandbox
from trainer.config import ConfigError, TrainConfig, load_config
from trainer.config.groups_data import SamplerName
from trainer.grid.generate import DEFAULT_WEIGHTS, GridRequest, parse_weights
from trainer.grid.process import draw_in_child
from trainer.markdown import escape
from trainer.models.detect import native_resolution
from ui.runs.view import OUTPUT_SUFFIXES
from ui.tab_timers import on_shown

TITLE = "compare.title"
MODEL_SUFFIXES = (".safetensors", ".ckpt")
EPOCH_SUFFIX = re.compile(r"-\d{6}$")
# Folders a save writes beside its file (trainer.engine.checkpoint's STATE_SUFFIX and DIFFUSERS_SUFFIX, named here
# so the page need not import torch), also while swapped in (.old, .tmp<ms>): their files are no LoRAs.
SAVED_FOLDER = re.compile(r".+-(state|diffusers)(\.old|\.tmp\d+)?")
_LOCK = threading.Lock()  # one grid at a time: each loads a base model onto the GPU
PLACEHOLDER_PROMPT = "a photo of zk"  # shown until a run's LoRA is picked (its own prompts replace it)


# Gradio finds progress tracking by the parameter's default; one shared marker object is enough.
TRACK = gr.Progress()


def available() -> bool:
    return True


def _group_of(path: Path) -> Path:
    """The run a LoRA file belongs to: runs/<id>/output/x.safetensors -> runs/<id>; else its folder."""
    return path.parent.parent if path.parent.name == "output" else path.parent


def _is_final(path: Path) -> bool:
    """Epoch and step files end in -000003; the run's final file has no such number."""
    return EPOCH_SUFFIX.search(path.stem) is None


def lora_choices(ctx) -> list[tuple[str, str]]:
    """(label, path) of every LoRA file (.safetensors, or .ckpt/.pt as save_model_as writes them; diffusers loads
    those with torch.load(weights_only=True)) under the workspace outputs and runs, grouped by run: the newest run
    first, and in each run its final file first, then the latest epochs.

    Saved training states (…-state folders) hold optimizer files, and a Dreambooth save's diffusers folder
    (…-diffusers) the model's parts, not LoRAs: both are left out."""
    groups: dict[Path, list[Path]] = {}
    for root in (ctx.outputs_dir, ctx.runs_dir):
        if root.is_dir():
            for p in (p for suffix in OUTPUT_SUFFIXES for p in root.rglob(f"*{suffix}")):  # save_model_as
                if not any(SAVED_FOLDER.fullmatch(x) for x in p.relative_to(root).parts[:-1]):
                    groups.setdefault(_group_of(p), []).append(p)
    newest_first = sorted(groups.items(), key=lambda kv: (-max(f.stat().st_mtime for f in kv[1]), str(kv[0])))
    out = []
    for group, files in newest_first:
        where = group.relative_to(ctx.workspace)
        for f in sorted(files, key=lambda f: (not _is_final(f), -f.stat().st_mtime, f.name)):
            mark = f" ({ctx.t('compare.final')})" if _is_final(f) else ""
            out.append((f"{where} · {f.name}{mark}", str(f)))
    return out


def run_config(lora: str) -> TrainConfig | None:
    """The settings of the run a LoRA file came from (runs/<id>/output/<file>), or None for any other file."""
    path = Path(lora)
    config = _group_of(path) / "config.toml"
    if path.parent.name != "output" or not config.is_file():  # a file outside a run's output/
        return None
    try:
        return load_config(config)
    except (ConfigError, OSError, ValueError):  # an unreadable old config: keep what the form shows
        return None


def fill_from_run(chosen: list[str], prompts: str, negative: str, base: str, start_base: str | None) -> tuple:
    """(prompts, negative, base) updates when LoRA files are ticked: the first ticked run's sample prompts (else its
    trigger word), negative prompt and base model, each only where the form still shows its starting value, so
    nothing the user typed or picked is replaced."""
    cfg = next(filter(None, (run_config(f) for f in chosen or [])), None)
    if cfg is None:
        return gr.skip(), gr.skip(), gr.skip()
    s = cfg.sampling
    run_prompts = s.sample_prompts.strip() or cfg.caption.trigger_word.strip()
    fresh_prompts = (prompts or "").strip() in ("", PLACEHOLDER_PROMPT)
    run_base = cfg.model.base_model.strip()
    fresh_base = not base or base == start_base
    return (run_prompts if fresh_prompts and run_prompts else gr.skip(),
            s.sample_negative_prompt if not (negative or "").strip() and s.sample_negative_prompt else gr.skip(),
            run_base if fresh_base and run_base and run_base != base else gr.skip())


def base_choices(ctx) -> list[str]:
    """Diffusers folders and checkpoint files in the workspace's models folder."""
    models = ctx.models_dir
    if not models.is_dir():
        return []
    return sorted(str(p) for p in models.iterdir()
                  if (p.is_dir() and (p / "model_index.json").is_file()) or p.suffix in MODEL_SUFFIXES)


def build(ctx) -> None:
    t = ctx.t
    grids = ctx.outputs_dir / "grids"
    gr.Markdown(t("compare.about", grids=str(grids)))
    bases = base_choices(ctx)
    with gr.Row():
        base = gr.Dropdown(bases, value=bases[0] if bases else None, allow_custom_value=True, label=t("compare.base"),
                           elem_id="compare-base", scale=3)
        refresh = gr.Button(t("compare.refresh"), elem_id="compare-refresh", scale=0)
    choices = lora_choices(ctx)
    loras = gr.CheckboxGroup(choices, label=t("compare.loras"), elem_id="compare-loras")
    none_found = gr.Markdown(t("compare.none_found"), visible=not choices, elem_id="compare-none")
    paths = gr.Textbox(label=t("compare.paths"), lines=2, elem_id="compare-paths")
    weights = gr.Textbox(", ".join(f"{w:g}" for w in DEFAULT_WEIGHTS), label=t("compare.weights"),
                         elem_id="compare-weights")
    prompts = gr.Textbox(PLACEHOLDER_PROMPT, label=t("compare.prompts"), lines=3, elem_id="compare-prompts")
    negative = gr.Textbox("", label=t("compare.negative"), elem_id="compare-negative")
    with gr.Row():
        seed = gr.Number(42, label=t("compare.seed"), precision=0, elem_id="compare-seed")
        steps = gr.Number(20, label=t("compare.steps"), precision=0, minimum=1, elem_id="compare-steps")
        width = gr.Number(512, label=t("compare.width"), precision=0, minimum=64, step=64, elem_id="compare-width")
        height = gr.Number(512, label=t("compare.height"), precision=0, minimum=64, step=64, elem_id="compare-height")
        cfg = gr.Number(7.0, label=t("compare.cfg"), minimum=0, elem_id="compare-cfg")
        sampler = gr.Dropdown(list(SamplerName.__args__), value="euler_a", label=t("compare.sampler"),
                              elem_id="compare-sampler")
    run = gr.Button(t("compare.run"), variant="primary", elem_id="compare-run")
    status = gr.Markdown(elem_id="compare-status")
    # No label badge: it sat over the grid's own title. The status line above names the picture.
    image = gr.Image(label=t("compare.grid"), show_label=False, type="pil", interactive=False,
                     elem_id="compare-image")
    fields = {"base": base, "loras": loras, "paths": paths, "weights": weights, "prompts": prompts,
              "negative": negative, "seed": seed, "steps": steps, "width": width, "height": height, "cfg": cfg,
              "sampler": sampler}

    def on_refresh():
        found, models = lora_choices(ctx), base_choices(ctx)
        return gr.update(choices=found), gr.update(visible=not found), gr.update(choices=models)

    def model_size(chosen):
        """Draw at the base model's own size: 512 px on the 64 px demo model takes minutes for nothing."""
        try:
            side = native_resolution(sandbox.allowed(chosen)) if chosen and sandbox.is_local(chosen) else None
        except ValueError:  # outside the folders a remote page may read: keep the typed size
            side = None
        return (side, side) if side else (gr.skip(), gr.skip())

    def on_show(chosen):  # the lists as they are now (the build-time ones are stale)
        return (*on_refresh(), *model_size(chosen))

    def on_run(data: dict, progress=TRACK):
        values = {name: data[comp] for name, comp in fields.items()}
        try:
            picture, message = _render(ctx, values, grids, progress)
        except Exception as exc:  # shown in the page: a bad path or a model that does not load
            return t("compare.failed", error=escape(exc)), None
        return message, picture

    refresh.click(on_refresh, outputs=[loras, none_found, base])
    start_base = bases[0] if bases else None
    loras.input(lambda *v: fill_from_run(*v, start_base), inputs=[loras, prompts, negative, base],
                outputs=[prompts, negative, base])
    base.change(model_size, inputs=[base], outputs=[width, height])
    on_shown(ctx, on_show, [base], [loras, none_found, base, width, height])
    run.click(on_run, inputs=set(fields.values()), outputs=[status, image])


def _request(ctx, v: dict) -> GridRequest:
    base = str(v["base"] or "").strip()
    if not base:
        raise ValueError(ctx.t("compare.no_base"))
    files = list(v["loras"] or []) + [ln.strip() for ln in str(v["paths"] or "").splitlines() if ln.strip()]
    if not files:
        raise ValueError(ctx.t("compare.no_lora"))
    files = [str(sandbox.allowed(f, ctx.t("compare.loras"))) for f in files]
    if sandbox.is_local(base):
        sandbox.allowed(base, ctx.t("compare.base"))
    return GridRequest(base=base, loras=files, prompts=str(v["prompts"] or ""), weights=parse_weights(v["weights"]),
                       negative=str(v["negative"] or ""), seed=int(v["seed"]), steps=int(v["steps"]),
                       width=int(v["width"]), height=int(v["height"]), cfg=float(v["cfg"]), sampler=v["sampler"])


def _render(ctx, values: dict, grids: Path, progress):
    """(grid picture, status line); the PNG is saved under outputs/grids."""
    req = _request(ctx, values)
    start = time.time()
    grids.mkdir(parents=True, exist_ok=True)
    path = grids / f"grid-{time.strftime('%Y%m%d-%H%M%S')}-{int(time.time() * 1000) % 1000:03d}.png"
    with _LOCK:
        progress(0, desc=ctx.t("compare.loading"))
        cells = draw_in_child(req, cache_dir=ctx.cache_dir, out=path, progress=lambda done, total, what: progress(
            (done, total), desc=ctx.t("compare.drawing", what=what)))
    with Image.open(path) as picture:
        picture.load()
    message = ctx.t("compare.done", cells=cells, seconds=time.time() - start, path=str(path))
    return picture, message
