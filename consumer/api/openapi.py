"""Write (or check) the HTTP API's OpenAPI document, schemas/openapi.json, from the routes.

python -m consumer.api.openapi          # rewrite schemas/openapi.json
python -m consumer.api.openapi --check  # exit 1 when the file differs from the routes
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from consumer import package_version
from consumer.api.app import declare_app

DOCUMENT = Path(__file__).resolve().parents[2] / "schemas" / "openapi.json"


def render() -> str:
    """The OpenAPI document the server serves at /openapi.json, as the exact text of the file."""
    return json.dumps(declare_app(package_version()).openapi(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check; exit 1 on drift")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not DOCUMENT.exists() or DOCUMENT.read_text() != text:
            print(f"{DOCUMENT.name} is out of date: run `python -m consumer.api.openapi`", file=sys.stderr)
            return 1
        return 0
    DOCUMENT.write_text(text)
    print(DOCUMENT.relative_to(DOCUMENT.parents[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
