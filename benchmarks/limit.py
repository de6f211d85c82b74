"""The machine's fp32 limit, so every speed can be given as a fraction of it (issue #6).

A 2048×2048 sgemm is about as efficient as torch's fp32 matmul gets on this CPU, so its GFLOP/s
is the ceiling for the matmul-bound models here. It is measured in the same run as the speed it
is compared with: on a shared 2-core machine it swings by 2× from one minute to the next.
"""

from __future__ import annotations

import statistics
import time

FLOP_PER_TOKEN = 42e6
"""e5-small forward cost per token: 2 × (4·384² + 2·384·1536) × 12 layers ≈ 42 MFLOP."""


def measure_limit(repeat: int = 10) -> dict:
    """GFLOP/s of a 2048×2048 fp32 matmul with torch at its current thread count."""
    import torch

    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
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
    }


def fraction_of_limit(tokens: int, seconds: float, limit_gflops: float) -> dict:
    """Effective GFLOP/s of embedding ``tokens`` in ``seconds``, and its share of the limit."""
    gflops = tokens * FLOP_PER_TOKEN / seconds / 1e9
    return {"gflops": round(gflops, 1), "fraction_of_limit": round(gflops / limit_gflops, 3)}
