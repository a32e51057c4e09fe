"""Faceguard: masks every face in the images a Kafka request or an HTTP call points it at.

The version is the installed distribution's (`package_version`), declared once, in pyproject.toml.
"""

import importlib.metadata


def package_version() -> str:
    """The installed faceguard distribution's version ("unknown" when run from a tree not installed)."""
    try:
        return importlib.metadata.version("faceguard")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
