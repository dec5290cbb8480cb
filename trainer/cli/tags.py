"""`python -m trainer tags <op> DIR ...`: the Tag Editor's operations from a shell.

    python -m trainer tags freq DIR [--top 50]
    python -m trainer tags delete DIR --tag solo [--filter-any 1girl]
    python -m trainer tags add DIR --tag "masterpiece" --front
    python -m trainer tags replace DIR --old "long_hair" --new "long hair"
    python -m trainer tags regex DIR --pattern "_" --repl " "
Every editing command saves only the changed captions, with a backup unless --no-backup.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("tags", help="view and bulk-edit caption tags of a dataset folder")
    ops = p.add_subparsers(dest="tags_op", required=True, metavar="OP")
    freq = ops.add_parser("freq", help="print the tag frequency table")
    _common(freq)
    freq.add_argument("--top", type=int, default=0, help="print only the N most common tags (0: all)")
    _edit(ops, "delete", "delete tags", tags=True)
    add = _edit(ops, "add", "add tags (skipped where already present)", tags=True)
    add.add_argument("--front", action="store_true", help="insert at the start instead of the end")
    rep = _edit(ops, "replace", "replace one tag by another")
    rep.add_argument("--old", required=True, help="tag to replace")
    rep.add_argument("--new", default="", help="replacement (empty: delete)")
    rx = _edit(ops, "regex", "regular-expression search and replace on each tag")
    rx.add_argument("--pattern", required=True, help="Python regular expression")
    rx.add_argument("--repl", default="", help="replacement (\\1 for groups)")
    rx.add_argument("--whole-caption", action="store_true", help="apply to the joined caption, then re-split")
    _edit(ops, "front", "move tags to the front, in the order given", tags=True)
    srt = _edit(ops, "sort", "sort tags alphabetically")
    srt.add_argument("--keep-first", type=int, default=0, help="leave the first N tags in place")
    srt.add_argument("--reverse", action="store_true")
    _edit(ops, "dedupe", "remove duplicate tags (keep the first)")
    _edit(ops, "escape", "escape brackets: (x) -> \\(x\\); weights like (tag:1.2) keep their brackets")
    _edit(ops, "unescape", "unescape brackets: \\(x\\) -> (x)")
    _edit(ops, "underscores", "underscores to spaces, except kaomoji like ^_^")
    p.set_defaults(func=run)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", help="dataset folder (images with sidecar captions)")
    p.add_argument("--ext", default=".txt", help="caption extension (default .txt)")
    p.add_argument("--recursive", "-r", action="store_true", help="include sub-folders")
    p.add_argument("--separator", default=", ", help='tag separator used when writing (default ", ")')
    p.add_argument("--filter-all", action="append", default=[], metavar="TAG", help="only images with all of these")
    p.add_argument("--filter-any", action="append", default=[], metavar="TAG", help="only images with any of these")
    p.add_argument("--filter-none", action="append", default=[], metavar="TAG", help="only images with none of these")
    p.add_argument("--search", default="", help="only images whose caption or path contains this text")


def _edit(ops, name: str, help_text: str, tags: bool = False) -> argparse.ArgumentParser:
    p = ops.add_parser(name, help=help_text)
    _common(p)
    if tags:
        p.add_argument("--tag", action="append", required=True, metavar="TAG",
                       help="tag (repeat, or comma-separated)")
    p.add_argument("--dry-run", action="store_true", help="only count the captions that would change")
    p.add_argument("--no-backup", action="store_true", help="do not copy old captions to a backup folder")
    p.add_argument("--backup-dir", default=None, help="folder to create the backup in (default: beside DIR)")
    p.add_argument("--encoding", choices=["keep", "utf-8"], default="keep",
                   help="keep each file's encoding (default) or write UTF-8")
    p.add_argument("--force", action="store_true", help="overwrite captions changed on disk since loading")
    return p


def _split(values: list[str]) -> list[str]:
    from trainer.tags.parse import split_tags

    return [t for v in values for t in split_tags(v)]


def run(args: argparse.Namespace) -> int:
    from trainer.tags import Filter, filter_indices, frequency, load_dataset

    try:
        ds = load_dataset(args.dir, caption_ext=args.ext, recursive=args.recursive, separator=args.separator)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}")
        return 2
    flt = Filter(all_of=_split(args.filter_all), any_of=_split(args.filter_any),
                 none_of=_split(args.filter_none), text=args.search)
    idx = filter_indices(ds, flt)
    if args.tags_op == "freq":
        rows = frequency(ds, idx)
        for tag, count in rows[: args.top or None]:
            print(f"{count}\t{tag}")
        print(f"# {len(idx)} of {len(ds)} images, {len(rows)} distinct tags")
        return 0
    return _run_edit(ds, idx, args)


def _run_edit(ds, idx: list[int], args: argparse.Namespace) -> int:
    from trainer.tags import apply_op, make_op, preview_count, save_dataset
    from trainer.tags.save import ConflictError

    try:
        op = make_op(args.tags_op, tags=_split(getattr(args, "tag", None) or []), front=getattr(args, "front", False),
                     old=getattr(args, "old", ""), new=getattr(args, "new", ""),
                     pattern=getattr(args, "pattern", ""), repl=getattr(args, "repl", ""),
                     whole_caption=getattr(args, "whole_caption", False),
                     keep_first=getattr(args, "keep_first", 0), reverse=getattr(args, "reverse", False),
                     separator=ds.separator)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    if args.dry_run:
        print(f"{op.label}: would change {preview_count(ds, idx, op)} of {len(idx)} selected images")
        return 0
    changed = apply_op(ds, idx, op)
    try:
        report = save_dataset(ds, encoding=args.encoding, backup=not args.no_backup,
                              backup_root=args.backup_dir, force=args.force)
    except ConflictError as exc:
        print(f"error: {exc}")
        return 3
    print(f"{op.label}: changed {changed} of {len(idx)} selected images; wrote {len(report.written)} files")
    if report.backup_dir:
        print(f"backup of the previous captions: {report.backup_dir}")
    return 0
