# The one timer of the GPU benchmarks' PyTorch references, the Python twin of best_per_call in
# bench_util.h: scripts/gpu_check.sh imports this file (PYTHONPATH=bench), bench_cuda_losses embeds
# it (bench/CMakeLists.txt). Best over `rounds` of the mean time of `inner` back-to-back calls of
# `step`, after `warmup` calls; each measurement ends with `sync`, since CUDA calls only queue work.
import time

import torch


def best_seconds(step, inner=20, rounds=5, warmup=3, sync=None):
    sync = sync or torch.cuda.synchronize
    for _ in range(warmup):
        step()
    sync()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(inner):
            step()
        sync()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best
