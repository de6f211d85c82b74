"""The machine's fp32 limit, so every speed can be given as a fraction of it (issue #6).

A 2048×2048 sgemm is about as efficient as torch's fp32 matmul gets on this CPU, so its GFLOP/s
is the ceiling for the matmul-bound models here. It is measured in the same run as the speed it
is compared with: on a shared 2-core machine it swings by 2× from one minute to the next.
"""

from __future__ import annotations

import statistics
import time


def flop_per_token(layers: int, hidden: int = 384, ffn: int = 1536) -> float:
    """Matmul FLOP per token of a BERT-style encoder: 2 × (4·h² + 2·h·ffn) per layer.

    Attention scores add 4·h·L per token and layer, under a tenth of this at the lengths here,
    so leaving them out makes every fraction of the limit a slight underestimate.
    """
    return 2.0 * (4 * hidden**2 + 2 * hidden * ffn) * layers


FLOP_PER_TOKEN = flop_per_token(12)
"""e5-small forward cost per token (12 layers, hidden 384, FFN 1536): ≈ 42 MFLOP."""


def measure_limit(repeat: int = 10, dtype: str = "fp32") -> dict:
    """GFLOP/s of a 2048×2048 matmul with torch at its current thread count.

    ``dtype="bf16"`` gives the limit of a model running at bf16 (AMX or AVX512-BF16 kernels;
    on a CPU without them torch emulates bf16 and the figure says so by being low).
    """
    import torch

    n = 2048
    kind = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    a, b = torch.randn(n, n).to(kind), torch.randn(n, n).to(kind)
    torch.mm(a, b)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    flop = 2 * n**3
    return {
        "gflops_best": round(flop / min(times) / 1e9, 1),
        "gflops_median": round(flop / statistics.median(times) / 1e9, 1),
        "threads": torch.get_num_threads(),
        "matrix": n,
        "dtype": dtype,
    }


def fraction_of_limit(
    tokens: float, seconds: float, limit_gflops: float, per_token: float = FLOP_PER_TOKEN
) -> dict:
    """Effective GFLOP/s of running ``tokens`` through a model costing ``per_token`` FLOP each
    in ``seconds``, and its share of the limit."""
    gflops = tokens * per_token / seconds / 1e9
    return {"gflops": round(gflops, 1), "fraction_of_limit": round(gflops / limit_gflops, 3)}


def passage_tokens(encoder, texts: list[str], prompt_name: str = "passage") -> int | None:
    """Tokens the encoder's model sees for ``texts`` (prompt included), if it can say."""
    model = getattr(encoder, "model", None)
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return None
    prompt = getattr(model, "prompts", {}).get(prompt_name, "")
    ids = tokenizer([prompt + t for t in texts])["input_ids"]
    return sum(min(len(i), getattr(model, "max_seq_length", 512) or 512) for i in ids)
