"""Importing gradio without regenerating its type stubs: half of the import's time, for a server.

gradio's component metaclass (``gradio.component_meta.ComponentMeta``) calls
``create_or_modify_pyi`` for every component class it creates, so ``import gradio`` reads the
source file of each of its ~60 component classes, parses the whole file with ``ast`` (some files
many times, once per class in them), renders a ``.pyi`` interface and compares it with, or
writes it into, gradio's installed package. That serves editors of gradio's own code; a server
only pays for it: about 1.5 s of a 3.3 s import on the 2-core development machine (measured with
``python -X importtime`` and side by side, ``benchmarks/cold_start.py``), and write attempts
into ``site-packages`` at every start.

:func:`skip_stub_writing` installs an import hook that, right after ``gradio.component_meta``
has run and before any component class exists, replaces that function with one that does
nothing. Nothing else about gradio changes; where gradio is already imported, or a future gradio
has no such function, the hook changes nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
from types import ModuleType
from typing import Any

logger = logging.getLogger(__name__)

MODULE = "gradio.component_meta"
FUNCTION = "create_or_modify_pyi"


def _skip_stub_writing(*_args: Any, **_kwargs: Any) -> None:
    """Stands in for gradio's ``create_or_modify_pyi``: a server needs no type stubs."""


class _StubSkipper(importlib.abc.MetaPathFinder):
    """Finds ``gradio.component_meta`` as usual and patches it once it has executed."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != MODULE:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)  # once is all it takes; later imports are untouched
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        loader = getattr(spec, "loader", None)
        if spec is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            if callable(getattr(module, FUNCTION, None)):
                setattr(module, FUNCTION, _skip_stub_writing)
            else:
                logger.debug("%s has no %s: nothing to skip", MODULE, FUNCTION)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def skip_stub_writing() -> bool:
    """Make the next ``import gradio`` skip its type-stub writing; ``False`` where gradio is
    already imported (too late to matter) or the hook is already installed."""
    if MODULE in sys.modules or any(isinstance(f, _StubSkipper) for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, _StubSkipper())
    return True
