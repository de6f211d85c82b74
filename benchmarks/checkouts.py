"""Benchmark arms: other working trees, or this one with other settings, in one run.

``git worktree add ../before HEAD~1`` makes the "before"; a benchmark given
``--checkout before:../before`` runs that tree's server beside this one's, same interpreter,
same caches, rounds interleaved. A result names the commit each tree ran, never its path.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path


def parse_checkouts(specs: Iterable[str]) -> dict[str, Path]:
    """``NAME:PATH`` options as ``{name: tree}``; a path that is no checkout is an error."""
    trees: dict[str, Path] = {}
    for spec in specs:
        name, _, path = spec.partition(":")
        tree = Path(path).resolve()
        if not name or not (tree / "ui.py").is_file():
            raise SystemExit(f"--checkout {spec!r}: want NAME:PATH of a Ludao working tree")
        trees[name] = tree
    return trees


def parse_variants(specs: Iterable[str]) -> dict[str, dict[str, str]]:
    """``NAME:KEY=VALUE,...`` options as ``{name: environment}`` (``NAME:`` for the defaults)."""
    variants: dict[str, dict[str, str]] = {}
    for spec in specs:
        name, _, assignments = spec.partition(":")
        if not name or any("=" not in kv for kv in assignments.split(",") if kv):
            raise SystemExit(f"--variant {spec!r}: want NAME:KEY=VALUE,...")
        variants[name] = dict(kv.split("=", 1) for kv in assignments.split(",") if kv)
    return variants


def commit_of(tree: Path) -> str:
    """``<short hash> <subject>`` of the commit checked out in ``tree``."""
    done = subprocess.run(
        ["git", "-C", str(tree), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    )
    return done.stdout.strip()[:120] or "unknown"
