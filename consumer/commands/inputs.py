"""Local image inputs: files and folders named on the command line."""

from __future__ import annotations

from pathlib import Path

from consumer.imaging.types import IMAGE_SUFFIXES


def expand_images(paths: list[Path]) -> list[tuple[Path, Path]]:
    """Each image file under `paths` with its path relative to the argument it came from.

    A folder expands to the image files below it (by suffix, sorted); a file is
    taken as it is, whatever its suffix. Raises FileNotFoundError for a missing path.
    """
    found: list[tuple[Path, Path]] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                (child, child.relative_to(path))
                for child in sorted(path.rglob("*"))
                if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES
            )
        elif path.exists():
            found.append((path, Path(path.name)))
        else:
            raise FileNotFoundError(f"{path} does not exist")
    return found
