#!/usr/bin/env python3
"""Fetch a second set of photos with no person in them: desktop wallpapers from Debian's packages.

    .venv/bin/python ops/fetch_facefree.py

`../shared/data/nofaces/` holds 14 face-free photos, and they are what the
harness reports on. The verifier is fitted on WIDER, where every photo is full
of people: it never saw soil, pebbles, leaves or wood, and a model that learns
"skin-coloured, on something the person mask calls a person" from crowds will
call a patch of pebbles on dark soil a crowd of faces. This script gathers 84
more face-free photos (moss and soil, leaves, wood, water, boats, dogs, a bird,
paper textures, abstract artwork) from eight Debian packages of desktop
wallpapers into `.cache/facefree/`, where `ops/eval_recall.py --suite facefree`
and `faceguard eval --suite facefree` score them as they score `nofaces/`
(`consumer/evaluation/suites.py`). Nothing is fitted on them. One photo with a
person in it (plasma's `Autumn`) is left out.

`ops/facefree.tsv` lists each photo: its package, its path in the package, the
name it is saved as, and its sha256, which is checked. The packages are fetched
with `apt-get download` (Debian's own mirror, as configured on the machine) and
unpacked with `dpkg-deb`; nothing is installed. The photos are not ours to
redistribute: they stay in the git-ignored `.cache/`, and are only measured.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from consumer.evaluation.suites import FACEFREE_DIR  # noqa: E402

MANIFEST = Path(__file__).with_name("facefree.tsv")


def manifest() -> list[tuple[str, str, str, str]]:
    """(package, path in the package, saved name, sha256) of each photo."""
    rows = []
    for line in MANIFEST.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            package, path, name, sha256 = line.split("\t")
            rows.append((package, path, name, sha256))
    return rows


def fetch(folder: Path) -> int:
    """Fill `folder` with the manifest's photos; returns how many were fetched (those present are kept)."""
    rows = manifest()
    missing = [row for row in rows if not _intact(folder / row[2], row[3])]
    if not missing:
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="faceguard-facefree-") as work:
        for package in sorted({row[0] for row in missing}):
            subprocess.run(["apt-get", "download", "-q", package], cwd=work, check=True, stdout=subprocess.DEVNULL)
            (deb,) = Path(work).glob(f"{package}_*.deb")
            unpacked = Path(work) / package
            subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
            deb.unlink()
            for _, path, name, sha256 in (row for row in missing if row[0] == package):
                source = unpacked / path.lstrip("/")
                if not _intact(source, sha256):
                    raise SystemExit(f"fetch-facefree: {package}:{path} is missing or not the photo listed")
                shutil.copyfile(source, folder / name)
            shutil.rmtree(unpacked)
    return len(missing)


def _intact(path: Path, sha256: str) -> bool:
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256


def main() -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    fetched = fetch(FACEFREE_DIR)
    print(f"fetch-facefree: {len(manifest())} face-free photos in {FACEFREE_DIR} ({fetched} fetched now)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
