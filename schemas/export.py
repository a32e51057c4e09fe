"""Write (or check) the JSON Schema file of every contract.

python -m schemas.export          # rewrite schemas/*.schema.json
python -m schemas.export --check  # exit 1 when a file differs from the models
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from schemas.events import CLOUDEVENT_DATA, CLOUDEVENT_TYPES, CONTRACTS, dataschema_uri

SCHEMA_DIR = Path(__file__).resolve().parent


def render(name: str) -> str:
    """The JSON Schema of contract `name`, as the exact text of its file."""
    schema = CONTRACTS[name].model_json_schema(by_alias=True, mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"faceguard/{name}.schema.json"
    if types := sorted(CLOUDEVENT_TYPES[kind] for kind, data in CLOUDEVENT_DATA.items() if data == name):
        # The CloudEvents whose data this contract describes, and the URI they name it by (ce_dataschema).
        schema["x-cloudevents"] = {"types": types, "dataschema": dataschema_uri(name)}
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def schema_path(name: str) -> Path:
    return SCHEMA_DIR / f"{name}.schema.json"


def stale() -> list[str]:
    """Names of contracts whose file is missing or differs from the model."""
    return [
        name for name in CONTRACTS if not schema_path(name).exists() or schema_path(name).read_text() != render(name)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check; exit 1 on drift")
    args = parser.parse_args(argv)
    if args.check:
        drifted = stale()
        for name in drifted:
            print(f"{schema_path(name).name} is out of date: run `python -m schemas.export`", file=sys.stderr)
        return 1 if drifted else 0
    for name in CONTRACTS:
        schema_path(name).write_text(render(name))
        print(schema_path(name).relative_to(SCHEMA_DIR.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
