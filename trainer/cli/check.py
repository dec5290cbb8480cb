"""`python -m trainer check --config F [--set k=v]`: validate, print the effective config and every finding."""

from __future__ import annotations


def run(args) -> int:
    from trainer.cli._common import load_or_report, print_filled
    from trainer.config import check, dump_config
    from trainer.config.rules import loss_form

    filled: list = []
    imported: list = []  # warnings about values the import of an sd-scripts file changed
    cfg = load_or_report(args, filled, imported)
    if cfg is None:
        return 2
    findings = imported + check(cfg, for_training=not args.no_paths)
    print(dump_config(cfg))
    print_filled(filled)
    print(loss_form(cfg))
    for f in findings:
        print(f"{f.level}: {f.text(args.lang)}")
    errors = [f for f in findings if f.level == "error"]
    print(f"{len(errors)} error(s), {len(findings) - len(errors)} warning(s)")
    return 1 if errors else 0


def register(sub) -> None:
    from trainer.cli._common import add_config_args

    p = sub.add_parser("check", help="validate a config and print the effective settings")
    add_config_args(p)
    p.add_argument("--no-paths", action="store_true", help="do not require base model and dataset paths")
    p.set_defaults(func=run)
