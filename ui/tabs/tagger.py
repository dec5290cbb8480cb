"""WD Tagger tab: preview one image's tags, then caption a whole folder with live progress.

The work is trainer.tagger's; this module only turns widget values into its options and its progress
into text. Paths are typed (the server may be remote, so no native file dialogs).
"""

from __future__ import annotations

import html
import importlib.util
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gradio as gr

from trainer import sandbox
from trainer.tagger.models import CATALOGUE, DEFAULT_MODEL, PROVIDER_CHOICES
from trainer.tagger.writer import ACTIONS
from ui.components.dataset_picker import dataset_picker

TITLE = "tagger.title"
UPDATE_EVERY_S = 0.3  # progress refresh interval: often enough to look live, rare enough for a share link

_models: dict[tuple[str, str], object] = {}  # (model folder, provider) -> TaggerModel, kept between clicks
_models_lock = threading.Lock()


class StopFlags:
    """One stop flag per page (Gradio session) with a folder run going: Stop ends that page's run only."""

    def __init__(self) -> None:
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, key: str) -> threading.Event:
        with self._lock:
            self._flags[key] = flag = threading.Event()
        return flag

    def stop(self, key: str) -> bool:
        """Ask the page's run to stop; False when it has none."""
        with self._lock:
            flag = self._flags.get(key)
        if flag is not None:
            flag.set()
        return flag is not None

    def done(self, key: str, flag: threading.Event) -> None:
        with self._lock:
            if self._flags.get(key) is flag:
                del self._flags[key]


def available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def build(ctx) -> None:
    t = ctx.t
    gr.Markdown(t("tagger.intro"))
    w: dict[str, gr.components.Component] = {}
    with gr.Row():
        w["model"] = gr.Dropdown(list(CATALOGUE), value=DEFAULT_MODEL, label=t("tagger.model"), elem_id="tagger-model")
        w["local"] = gr.Textbox(label=t("tagger.local_model"), info=t("tagger.local_model_info"),
                                elem_id="tagger-local-model")
        w["provider"] = gr.Dropdown(list(PROVIDER_CHOICES), value="auto", label=t("tagger.provider"),
                                    info=t("tagger.provider_info"))
    provider_md = gr.Markdown(t("tagger.provider_none"), elem_id="tagger-provider")
    with gr.Row():
        w["folder"] = gr.Textbox(label=t("tagger.folder"), info=t("tagger.folder_info"), elem_id="tagger-folder", scale=3)
        w["recursive"] = gr.Checkbox(False, label=t("tagger.recursive"))
        w["extension"] = gr.Textbox(".txt", label=t("tagger.extension"), elem_id="tagger-extension")
    dataset_picker(ctx, w["folder"], "tagger-dataset-picker")
    with gr.Accordion(t("tagger.selection"), open=False):
        with gr.Row():
            w["general_t"] = gr.Slider(0.0, 1.0, 0.35, step=0.01, label=t("tagger.general_threshold"))
            w["general_mcut"] = gr.Checkbox(False, label=t("tagger.general_mcut"))
            w["character_t"] = gr.Slider(0.0, 1.0, 0.85, step=0.01, label=t("tagger.character_threshold"))
            w["character_mcut"] = gr.Checkbox(False, label=t("tagger.character_mcut"))
        with gr.Row():
            w["rating"] = gr.Checkbox(False, label=t("tagger.rating"))
            w["underscores"] = gr.Checkbox(True, label=t("tagger.underscores"))
            w["escape"] = gr.Checkbox(False, label=t("tagger.escape"))
            w["character_first"] = gr.Checkbox(True, label=t("tagger.character_first"))
        with gr.Row():
            w["first"] = gr.Textbox(label=t("tagger.always_first"), info=t("tagger.comma_info"))
            w["undesired"] = gr.Textbox(label=t("tagger.undesired"), info=t("tagger.comma_info"))
            w["replace"] = gr.Textbox(label=t("tagger.replacements"), info=t("tagger.replacements_info"))
    with gr.Row():
        w["existing"] = gr.Radio([(t(f"tagger.existing_{a}"), a) for a in ACTIONS], value="skip",
                                 label=t("tagger.existing"), elem_id="tagger-existing")
        w["backup"] = gr.Checkbox(True, label=t("tagger.backup"))
        w["batch"] = gr.Number(8, precision=0, minimum=1, maximum=256, label=t("tagger.batch_size"))
    with gr.Row():
        w["preview_path"] = gr.Textbox(label=t("tagger.preview_image"), info=t("tagger.preview_image_info"),
                                       elem_id="tagger-preview-path", scale=3)
        preview_btn = gr.Button(t("tagger.preview"), elem_id="tagger-preview")
    with gr.Row():
        preview_picture = gr.Image(label=t("tagger.previewed"), type="filepath", interactive=False, height=240,
                                   elem_id="tagger-previewed")
        preview_label = gr.Label(num_top_classes=40, label=t("tagger.confidences"), elem_id="tagger-confidences")
        preview_caption = gr.Textbox(label=t("tagger.caption"), lines=4, elem_id="tagger-caption")
    with gr.Row():
        run_btn = gr.Button(t("tagger.run"), variant="primary", elem_id="tagger-run")
        stop_btn = gr.Button(t("tagger.stop"), variant="stop", elem_id="tagger-stop")
    bar = gr.HTML(_bar_html(0, 0))
    status = gr.Textbox(label=t("tagger.status"), lines=5, elem_id="tagger-status", interactive=False)

    def named(values: dict) -> dict:  # Gradio passes {component: value}; the helpers want {name: value}
        return {name: values[comp] for name, comp in w.items()}

    def on_preview(values: dict):
        yield from _preview(ctx, named(values))

    flags = StopFlags()

    def on_run(values: dict, request: gr.Request):
        flag = flags.start(request.session_hash)
        try:
            yield from _run(ctx, named(values), flag)
        finally:
            flags.done(request.session_hash, flag)

    def on_stop(request: gr.Request) -> None:  # the run sees it after the image in hand and says what it did
        flags.stop(request.session_hash)

    inputs = set(w.values())
    preview_btn.click(on_preview, inputs=inputs, outputs=[preview_label, preview_caption, provider_md, status,
                                                          w["preview_path"], preview_picture])
    run_btn.click(on_run, inputs=inputs, outputs=[bar, status, provider_md])
    stop_btn.click(on_stop, queue=False)


def _options(values: dict):
    from trainer.tagger.postprocess import TagOptions, parse_replacements, parse_tag_list

    return TagOptions(
        general_threshold=float(values["general_t"]),
        character_threshold=float(values["character_t"]),
        general_mcut=bool(values["general_mcut"]),
        character_mcut=bool(values["character_mcut"]),
        rating=bool(values["rating"]),
        replace_underscores=bool(values["underscores"]),
        escape_brackets=bool(values["escape"]),
        character_first=bool(values["character_first"]),
        undesired=parse_tag_list(values["undesired"]),
        always_first=parse_tag_list(values["first"]),
        replacements=parse_replacements(values["replace"]),
    )


def _load(ctx, values: dict):
    """Generator: yields status text while the model downloads, returns (model, provider markdown)."""
    from trainer.tagger import load_model, resolve_model_folder

    state: dict = {}
    if (values["local"] or "").strip():
        sandbox.allowed(values["local"].strip(), "tagger model folder")

    def on_progress(name: str, done: int, total: int) -> None:
        state.update(model=values["model"], file=name, done=done / 1e6, total=total / 1e6)

    yield ctx.t("tagger.loading")
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(resolve_model_folder, values["model"], values["local"], ctx.models_dir / "tagger", on_progress)
        while not job.done():
            time.sleep(UPDATE_EVERY_S)
            if state:
                yield ctx.t("tagger.downloading", **state)
        folder = job.result()
    key = (str(Path(folder).resolve()), values["provider"])
    with _models_lock:
        if key not in _models:
            _models.clear()  # one model in memory at a time; they are hundreds of MB
            _models[key] = load_model(folder, values["provider"])
        model = _models[key]
    name = values["local"].strip() if values["local"] and values["local"].strip() else values["model"]
    return model, ctx.t("tagger.provider_used", provider=model.describe(), size=model.size, model=name)


def _preview(ctx, values: dict):
    """Generator of (confidences, caption, provider, status, image path, picture) updates. The Status box is plain
    text: messages go in as written, never Markdown-escaped."""
    from trainer.tagger import confidences, tag_image

    busy = (gr.skip(),) * 3
    try:
        path = _preview_path(ctx, values)
        options = _options(values)
        loader = _load(ctx, values)
        while True:
            try:
                yield *busy, next(loader), gr.skip(), gr.skip()
            except StopIteration as done:
                model, provider = done.value
                break
        pred, tags = tag_image(model, path, options)
        yield confidences(pred, options), ", ".join(tags), provider, "", path, path
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as exc:
        yield *busy, ctx.t("tagger.error", message=str(exc)), gr.skip(), gr.skip()


def _preview_path(ctx, values: dict) -> str:
    """The image typed, or else the folder's first (the server's file names are unknown to a remote user)."""
    from trainer.tagger.preprocess import list_images

    typed = (values["preview_path"] or "").strip()
    if typed:
        return str(sandbox.allowed(typed, ctx.t("tagger.preview_image")))
    folder = (values["folder"] or "").strip()
    if not folder:
        raise ValueError(ctx.t("tagger.no_preview_path"))
    return str(list_images(sandbox.allowed(folder, ctx.t("tagger.folder")), bool(values["recursive"]))[0])


def _run(ctx, values: dict, stop: threading.Event | None = None):
    """Generator of (bar, status, provider) updates; ends early, saying what it did, once `stop` is set."""
    from trainer.tagger import TagJob, backup_folder_for, tag_folder

    stop = stop or threading.Event()

    try:
        options = _options(values)
        typed = (values["folder"] or "").strip()
        if not typed:  # Path("") is the server's working directory: never tag that by accident
            raise ValueError(ctx.t("tagger.no_folder"))
        folder = sandbox.allowed(typed, ctx.t("tagger.folder"))
        if not folder.is_dir():
            raise FileNotFoundError(f"image folder '{folder}' does not exist or is not a folder")
        loader = _load(ctx, values)
        while True:
            if stop.is_set():
                yield _bar_html(0, 0), ctx.t("tagger.stopped_early"), gr.skip()
                return
            try:
                yield _bar_html(0, 0), next(loader), gr.skip()
            except StopIteration as done:
                model, provider = done.value
                break
        backup_dir = None
        if values["backup"] and values["existing"] != "skip":
            backup_dir = backup_folder_for(ctx.workspace / "backups" / "captions", folder)
        job = TagJob(folder, options, values["existing"], values["extension"] or ".txt", bool(values["recursive"]),
                     backup_dir, int(values["batch"] or 8))
        last = 0.0
        for report in tag_folder(model, job):
            if stop.is_set() and not report.finished:
                yield _bar_html(report.progress.done, report.progress.total), _stopped_text(ctx, report, job), provider
                return
            now = time.perf_counter()
            if report.finished or now - last >= UPDATE_EVERY_S:
                last = now
                yield _bar_html(report.progress.done, report.progress.total), _report_text(ctx, report), provider
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as exc:
        yield _bar_html(0, 0), ctx.t("tagger.error", message=str(exc)), gr.skip()


def _stopped_text(ctx, report, job) -> str:
    p = report.progress
    lines = [ctx.t("tagger.stopped", done=p.done, total=p.total, written=report.written)]
    if job.backup_dir is not None and job.backup_dir.exists():
        lines.append(ctx.t("tagger.backup_saved", folder=job.backup_dir))
    return "\n".join(lines)


def _report_text(ctx, report) -> str:
    from trainer.tagger.pipeline import format_duration

    p = report.progress
    lines = [ctx.t("tagger.progress", done=p.done, total=p.total, rate=p.images_per_s, eta=format_duration(p.eta_s))]
    if report.finished:
        lines.append(ctx.t("tagger.summary", written=report.written, unchanged=report.unchanged,
                           skipped=report.skipped, failed=len(report.failed)))
        if report.backup_dir:
            lines.append(ctx.t("tagger.backup_saved", folder=report.backup_dir))
    lines += [ctx.t("tagger.failed_item", path=path, error=error) for path, error in report.failed]
    return "\n".join(lines)


def _bar_html(done: int, total: int) -> str:
    value, maximum = (done, total) if total else (0, 1)
    return (f'<progress id="tagger-progress" value="{value}" max="{maximum}" style="width:100%">'
            f"{html.escape(f'{done}/{total}')}</progress>")
