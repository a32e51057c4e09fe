"""The dependency locks: every requirement pinned to one version with its hashes, no download address, and
the image's lock a subset of the development one without the dev extras."""

from __future__ import annotations

import re

import pytest

from tests.support import REPO

LOCKS = REPO / "requirements"


def requirements(name: str) -> dict[str, str]:
    """The lock's requirements: name -> the whole entry (its continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", (LOCKS / name).read_text())
    entries = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return {re.split(r"[=;\s]", entry, maxsplit=1)[0].lower(): entry for entry in entries}


@pytest.mark.parametrize("name", ["dev.txt", "image.txt"])
def test_every_requirement_is_pinned_with_its_hashes_and_no_address(name: str) -> None:
    found = requirements(name)
    assert found
    for package, entry in found.items():
        assert re.match(rf"{re.escape(package)}==[\w.+!-]+\b", entry, re.IGNORECASE), entry
        assert "--hash=sha256:" in entry, entry
    assert "://" not in (LOCKS / name).read_text()


def test_the_image_installs_a_subset_of_the_development_set_without_the_dev_extras() -> None:
    def pins(name: str) -> dict[str, str]:  # name -> version (markers differ: the image's set is smaller)
        return {package: entry.split("==", 1)[1].split()[0] for package, entry in requirements(name).items()}

    dev, image = pins("dev.txt"), pins("image.txt")
    assert {package: dev.get(package) for package in image} == image
    assert not {"pytest", "mediapipe", "ruff", "mypy"} & set(image)
    assert {"ai-edge-litert", "opencv-python-headless", "confluent-kafka"} <= set(image)
