#!/usr/bin/env python3
"""Run the property-based tests of untrusted input (tests/unit/test_fuzz.py) far longer than the suite does.

    .venv/bin/python ops/fuzz.py [--examples 20000]

Each property gets `--examples` generated inputs (the suite: 200). Prints pytest's summary and the
time taken; exits non-zero when a property fails, with hypothesis's smallest failing example.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=20_000, help="generated inputs per property")
    args = parser.parse_args()
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout=0", "tests/unit/test_fuzz.py"],
        cwd=REPO,
        env={**os.environ, "FACEGUARD_FUZZ_EXAMPLES": str(args.examples)},
        check=False,
    )
    print(f"fuzz: {args.examples} examples per property, {time.monotonic() - started:.0f} s", file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
