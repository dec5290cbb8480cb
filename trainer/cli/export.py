"""`python -m trainer export --config F OUT.toml`: write a TOML sd-scripts' train_network.py accepts."""

from __future__ import annotations

from pathlib import Path


def run(args) -> int:
    import tomli_w

    from trainer.cli._common import keep_earlier, load_or_report, print_import_warnings
    from trainer.config.kohya import export_kohya, prompts_for_sd_scripts
    from trainer.textio import atomic_write_text

    imported: list = []
    cfg = load_or_report(args, warnings=imported)
    if cfg is None:
        return 2
    print_import_warnings(imported, args.lang)
    out = Path(args.out)
    prompts = None
    if cfg.sampling.sample_prompts.strip():
        prompts = out.with_suffix(".prompts.txt")
        keep_earlier(prompts)
        atomic_write_text(prompts, prompts_for_sd_scripts(cfg))
    exported: list = []
    text = tomli_w.dumps(export_kohya(cfg, str(prompts) if prompts else None, exported))
    keep_earlier(out)
    atomic_write_text(out, text)
    print_import_warnings([w for w in exported if w not in imported], args.lang)  # an import said it already
    print(f"wrote {out}")
    return 0


def register(sub) -> None:
    from trainer.cli._common import add_config_args

    p = sub.add_parser("export", help="export a config as a kohya sd-scripts TOML")
    add_config_args(p)
    p.add_argument("out", help="output TOML path")
    p.set_defaults(func=run)
