"""Dynamic int8 quantization of a torch model's Linear layers, shared by encoder and reader.

Dynamic: weights are stored as int8 once, activations are quantised per call, because inputs
vary in length and content and there is no calibration set at load time. Embeddings and
LayerNorms stay float32. Whether the accuracy survives is model-specific and measured in
``benchmarks/speed.py`` (the e5 encoder keeps its recall; the trained reader does not).
"""

from __future__ import annotations

from typing import Literal, TypeVar

Quantization = Literal["none", "int8"]
QUANTIZATIONS: tuple[str, ...] = ("none", "int8")

M = TypeVar("M")


def quantize_int8(model: M) -> M:
    """``model`` with every ``nn.Linear`` replaced by a dynamically quantised one (in place)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        # torch.ao's eager quantization is deprecated in favour of torchao, yet still shipped
        # and working in the torch this project pins; the warning would repeat on every load.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        return torch.ao.quantization.quantize_dynamic(
            model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
        )
