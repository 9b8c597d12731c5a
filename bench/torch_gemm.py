#!/usr/bin/env python3
"""PyTorch (CPU) fp32 GEMM on the shapes of bench_gemm.cpp, for the side-by-side figure.

    /usr/bin/python3 bench/torch_gemm.py [--threads N] [--min-time S]

Threads default to IRIS_NUM_THREADS, else 2 (as bench_gemm). Debian's torch takes its GEMM
from OpenBLAS; run it with OPENBLAS_CORETYPE=SkylakeX too (see bench/README.md).
"""
import argparse
import os
import time

import torch
import torch.nn.functional as F

# name, trans_b, M, N, K: squares are A @ B; the workload shapes are linear layers x @ W^T
# with W stored [out, in] (bench_gemm's _NT cases).
SHAPES = [
    ("square_256", False, 256, 256, 256),
    ("square_512", False, 512, 512, 512),
    ("square_1024", False, 1024, 1024, 1024),
    ("square_2048", False, 2048, 2048, 2048),
    ("vitcap_qkv", True, 32 * 65, 576, 192),
    ("vitcap_mlp_up", True, 32 * 65, 768, 192),
    ("vitcap_mlp_down", True, 32 * 65, 192, 768),
    ("vitcap_head", True, 32 * 16, 1024, 192),
    ("vitb16_qkv", True, 8 * 197, 2304, 768),
    ("vitb16_mlp_up", True, 8 * 197, 3072, 768),
]


def time_best(fn, min_time):
    """Best per-call time over repeated batches of calls lasting about min_time in all."""
    fn()
    calls, elapsed = 1, 0.0
    while elapsed < 0.05:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        calls *= 2
    best = elapsed / (calls // 2)
    deadline = time.perf_counter() + min_time
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=int(os.environ.get("IRIS_NUM_THREADS", "2")))
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per shape")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    print(f"{'shape':<16} {'M':>5} {'N':>5} {'K':>5}  {'ms':>8}  {'GFLOP/s':>8}")
    with torch.no_grad():
        for name, trans_b, M, N, K in SHAPES:
            a = torch.rand(M, K) * 2 - 1
            if trans_b:
                w = torch.rand(N, K) * 2 - 1
                fn = lambda: F.linear(a, w)  # noqa: E731
            else:
                b = torch.rand(K, N) * 2 - 1
                fn = lambda: torch.mm(a, b)  # noqa: E731
            seconds = time_best(fn, args.min_time)
            gflops = 2.0 * M * N * K / seconds * 1e-9
            print(f"{name:<16} {M:>5} {N:>5} {K:>5}  {seconds * 1e3:>8.3f}  {gflops:>8.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
