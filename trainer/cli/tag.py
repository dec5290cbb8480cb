"""`python -m trainer tag DIR`: write WD-tagger captions for every image in a folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trainer.tagger.models import CATALOGUE, DEFAULT_MODEL, PROVIDER_CHOICES
from trainer.tagger.writer import ACTIONS


def register(subparsers) -> None:
    p = subparsers.add_parser("tag", help="auto-tag images with a WD tagger (writes caption files)")
    p.add_argument("folder", type=Path, help="folder of images")
    src = p.add_argument_group("model")
    src.add_argument("--model", choices=CATALOGUE, default=DEFAULT_MODEL, help="Hub model (default %(default)s)")
    src.add_argument("--model-dir", help="local folder with model.onnx + selected_tags.csv (instead of --model)")
    src.add_argument("--workspace", type=Path, default=Path("workspace"),
                     help="Danlu workspace: downloads go to <workspace>/models/tagger, backups to <workspace>/backups")
    src.add_argument("--provider", choices=PROVIDER_CHOICES, default="auto", help="onnxruntime provider")
    sel = p.add_argument_group("tag selection and text")
    sel.add_argument("--general-threshold", type=float, default=0.35)
    sel.add_argument("--character-threshold", type=float, default=0.85)
    sel.add_argument("--mcut-general", action="store_true", help="MCut threshold for general tags")
    sel.add_argument("--mcut-character", action="store_true", help="MCut threshold for character tags (floor 0.15)")
    sel.add_argument("--rating", action="store_true", help="add the rating tag")
    sel.add_argument("--keep-underscores", action="store_true", help="do not turn '_' into spaces")
    sel.add_argument("--escape-brackets", action="store_true", help=r"write ( ) as \( \) (A1111 weighted captions)")
    sel.add_argument("--general-first", action="store_true", help="general tags before character tags")
    sel.add_argument("--undesired", default="", help="comma-separated tags never written")
    sel.add_argument("--first", default="", help="comma-separated tags always written first (trigger word)")
    sel.add_argument("--replace", default="", help="tag replacements 'old,new;old2,new2' (empty new removes)")
    out = p.add_argument_group("captions")
    out.add_argument("--existing", choices=ACTIONS, default="skip", help="when a caption exists (default skip)")
    out.add_argument("--ext", default=".txt", help="caption extension (default .txt)")
    out.add_argument("--recursive", action="store_true", help="also tag images in sub-folders")
    out.add_argument("--backup-dir", type=Path, help="where originals of changed captions are copied")
    out.add_argument("--no-backup", action="store_true", help="change captions without keeping the originals")
    run = p.add_argument_group("speed")
    run.add_argument("--batch-size", type=int, default=8, help="ignored when the model is fixed at batch 1")
    run.add_argument("--workers", type=int, default=0, help="image decoding threads (0: automatic)")
    p.set_defaults(func=run_tag)


def options_from_args(args: argparse.Namespace):
    from trainer.tagger.postprocess import TagOptions, parse_replacements, parse_tag_list

    return TagOptions(
        general_threshold=args.general_threshold,
        character_threshold=args.character_threshold,
        general_mcut=args.mcut_general,
        character_mcut=args.mcut_character,
        rating=args.rating,
        replace_underscores=not args.keep_underscores,
        escape_brackets=args.escape_brackets,
        character_first=not args.general_first,
        undesired=parse_tag_list(args.undesired),
        always_first=parse_tag_list(args.first),
        replacements=parse_replacements(args.replace),
    )


def run_tag(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from trainer.tagger import TagJob, backup_folder_for, load_model, resolve_model_folder, tag_folder

    try:
        options = options_from_args(args)
        folder = resolve_model_folder(args.model, args.model_dir, args.workspace / "models" / "tagger",
                                      _download_printer(args.model))
        model = load_model(folder, args.provider)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"model: {folder} | provider: {model.describe()} | input {model.size}px", flush=True)
    backup_dir = None
    if not args.no_backup and args.existing != "skip":
        backup_dir = args.backup_dir or backup_folder_for(args.workspace / "backups" / "captions", args.folder)
    job = TagJob(args.folder, options, args.existing, args.ext, args.recursive, backup_dir,
                 args.batch_size, args.workers or None)
    report, shown = None, 0
    try:
        with tqdm(unit="img", dynamic_ncols=True) as bar:
            for report in tag_folder(model, job):
                bar.total = report.progress.total
                bar.update(report.progress.done - bar.n)
                for path, error in report.failed[shown:]:
                    bar.write(f"skipped {path}: {error}")
                shown = len(report.failed)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary_line(report))
    return 1 if report.failed else 0


def _download_printer(model: str):
    """on_progress for a model download: a line naming the model and file, then a byte bar."""
    from tqdm import tqdm

    from trainer.models.hub import downloading_message

    bars: dict[str, tqdm] = {}

    def on_progress(filename: str, done: int, total: int) -> None:
        if filename not in bars:
            print(f"{downloading_message(model)}: {filename}", flush=True)
            bars[filename] = tqdm(unit="B", unit_scale=True, desc=filename, leave=False)
        bar = bars[filename]
        bar.total = total or None
        bar.update(done - bar.n)

    return on_progress


def summary_line(report) -> str:
    p = report.progress
    text = (f"{report.written} written, {report.unchanged} unchanged, {report.skipped} skipped, "
            f"{len(report.failed)} failed; {p.images_per_s:.2f} images/s")
    if report.backup_dir:
        text += f"; originals backed up in {report.backup_dir}"
    return text
