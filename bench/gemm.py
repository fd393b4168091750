"""How fast this host is now: fp32 GEMM GFLOP/s (1024 x 1024 torch.mm, best of 5) at 1 and 2 threads.

A shared box swings 2-3x from day to day; docs/findings.md gives this figure beside every sweep's
wall time (measured just before and just after it). Usage: ``python bench/gemm.py``.
"""
from __future__ import annotations

import os
import time

import torch

from labconsole.cost import gemm_gflops


def main() -> None:
    dev = torch.device("cpu")
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  load {os.getloadavg()[0]:.2f}")
    print("| threads | fp32 GEMM GFLOP/s |")
    print("|---|---|")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        print(f"| {threads} | {gemm_gflops(torch, dev):.0f} |")


if __name__ == "__main__":
    main()
