"""`python -m trainer schema`: the JSON Schema of the configuration (with Danlu's metadata)."""

from __future__ import annotations

import json


def run(args) -> int:
    from trainer.config.schema import json_schema

    print(json.dumps(json_schema(), ensure_ascii=False, indent=2))
    return 0


def register(sub) -> None:
    p = sub.add_parser("schema", help="print the configuration's JSON Schema")
    p.set_defaults(func=run)
