"""MediaPipe, imported without the plotting library its drawing helpers pull in.

`mediapipe.tasks.python.vision` imports its drawing helpers, and they import
`matplotlib.pyplot` at module level: about 28 MB of a worker's resident memory
(measured) and half a second of start-up for code a worker never runs. Here
`matplotlib` and `matplotlib.pyplot` are placeholders until some code touches
an attribute of either; then the real modules are imported and the placeholders
forward to them. Everything that uses MediaPipe imports it from this module.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_DEFERRED = ("matplotlib", "matplotlib.pyplot")


class _ImportedOnFirstUse(types.ModuleType):
    """Stands in for a module until one of its attributes is needed."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # import machinery probing a placeholder
            raise AttributeError(name)
        for module in _DEFERRED:
            if isinstance(sys.modules.get(module), _ImportedOnFirstUse):
                del sys.modules[module]
        return getattr(importlib.import_module(self.__name__), name)


def _defer_matplotlib() -> None:
    if any(module in sys.modules for module in _DEFERRED):
        return  # already imported (or deferred): leave it as it is
    package, pyplot = (_ImportedOnFirstUse(module) for module in _DEFERRED)
    package.__dict__["pyplot"] = pyplot  # `import matplotlib.pyplot as plt` takes the attribute of the package
    sys.modules.update(zip(_DEFERRED, (package, pyplot), strict=True))


_defer_matplotlib()

import mediapipe as mp  # noqa: E402
from mediapipe.tasks.python import BaseOptions, vision  # noqa: E402

__all__ = ["BaseOptions", "mp", "vision"]
