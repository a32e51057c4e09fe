"""The harness's photo sets: the CLI offers every one, and the face-free set fetched from Debian is listed
exactly and reported missing with what to run."""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from consumer.cli import HANDLERS
from consumer.commands.arguments import parser as cli_parser
from consumer.evaluation import suites
from consumer.evaluation.suites import Suite, suite_images

REPO = Path(__file__).resolve().parents[2]


def fetch_module() -> ModuleType:
    """`ops/fetch_facefree.py`, loaded as a module (the ops scripts are not a package)."""
    spec = importlib.util.spec_from_file_location("fetch_facefree", REPO / "ops" / "fetch_facefree.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_offers_every_suite() -> None:
    """`faceguard eval --suite` lists its choices by hand (importing the enum would load LiteRT at every CLI
    start): they stay the enum's."""
    parser = cli_parser(HANDLERS)
    for suite in Suite:
        assert parser.parse_args(["eval", "--suite", suite.value]).suite == [suite.value]
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "--suite", "everything"])


def test_the_face_free_manifest_lists_each_photo_once_with_its_checksum() -> None:
    rows = fetch_module().manifest()
    assert len(rows) == 84
    names = [name for _, _, name, _ in rows]
    assert len(set(names)) == len(names)
    for package, path, name, sha256 in rows:
        assert re.fullmatch(r"[a-z0-9.+-]+", package), package
        assert path.startswith("/usr/share/")
        assert Path(name).suffix == Path(path).suffix
        assert re.fullmatch(r"[0-9a-f]{64}", sha256)
    assert "Autumn.jpg" not in names  # the one wallpaper with a person in it


def test_a_fetched_photo_counts_only_when_its_checksum_matches(tmp_path: Path) -> None:
    module = fetch_module()
    _, _, name, sha256 = module.manifest()[0]
    photo = tmp_path / name
    assert not module._intact(photo, sha256)
    photo.write_bytes(b"not the photo")
    assert not module._intact(photo, sha256)
    assert module._intact(photo, hashlib.sha256(b"not the photo").hexdigest())


def test_the_face_free_suite_says_how_to_fetch_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(suites, "FACEFREE_DIR", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=r"ops/fetch_facefree\.py"):
        suite_images(Suite.FACEFREE)


def test_the_face_free_suite_reads_its_folder_as_photos_without_faces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cv2
    import numpy as np

    for name in ("b.png", "a.jpg"):
        cv2.imwrite(str(tmp_path / name), np.full((30, 40, 3), 90, np.uint8))
    (tmp_path / "notes.txt").write_text("not a photo")
    monkeypatch.setattr(suites, "FACEFREE_DIR", tmp_path)
    images = suite_images(Suite.FACEFREE)
    assert [(image.path.name, image.width, image.height, image.faces) for image in images] == [
        ("a.jpg", 40, 30, ()),
        ("b.png", 40, 30, ()),
    ]


def test_a_shared_suite_without_the_shared_data_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not beside the repository"):
        suite_images(Suite.NOFACES, data=tmp_path / "absent")
