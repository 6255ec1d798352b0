#!/usr/bin/env python3
"""torch_somp.py: a straightforward PyTorch SOMP on the GPU, the peer of bench_cuda's SOMP phase
(PAPER.md §3 Algorithm 1 as written): every step recomputes all correlations P = Dict·R^T, takes
the ℓ1 argmax over free atoms, and re-solves the least squares on the whole support with
torch.linalg.lstsq; heads batched (G at a time). fp32 throughout, TF32 off (as bench_cuda's
hp_somp_cuda_batch). Same sizes: N = 2048 samples, D = 4096, k = 50, dictionaries of 256 and
32000 atoms; signals and dictionary are made on the GPU (device-resident: no host transfer in
the timing, unlike bench_cuda, which starts from host memory). Recomputing P costs 2·V·N·D
FLOPs per head and step, so by default only a few heads are run and the time per head is
extrapolated to --report-heads (1024). One JSON line per dictionary ({"bench":"torch_somp",...}).

    python3 bench/torch_somp.py [--vocab 256,32000] [--heads 64,8] [--group 0] [--k 50]
"""
import argparse
import json
import sys
import time

import torch


def somp(H, Dict, k):
    """H [G, N, D], Dict [V, D]: supports [G, k] and EVR [G] after k steps."""
    G, N, D = H.shape
    V = Dict.shape[0]
    hh = (H * H).sum((1, 2))
    R = H
    chosen = torch.zeros(G, V, dtype=torch.bool, device=H.device)
    rows = torch.arange(G, device=H.device)
    support = []
    for _ in range(k):
        P = torch.matmul(Dict, R.transpose(1, 2))  # [G, V, N]
        score = P.abs().sum(-1)
        del P
        score[chosen] = -float("inf")
        j = score.argmax(-1)
        chosen[rows, j] = True
        support.append(j)
        A = Dict[torch.stack(support, 1)]  # [G, t, D]
        X = torch.linalg.lstsq(A.transpose(1, 2), H.transpose(1, 2)).solution  # [G, t, N]
        R = H - torch.matmul(X.transpose(1, 2), A)
    evr = 1 - (R * R).sum((1, 2)) / hh
    return torch.stack(support, 1), evr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", default="256,32000")
    ap.add_argument("--heads", default="64,8", help="heads run per dictionary size")
    ap.add_argument("--group", type=int, default=0, help="heads per batch (0: from free memory)")
    ap.add_argument("--report-heads", type=int, default=1024)
    ap.add_argument("--N", type=int, default=2048)
    ap.add_argument("--D", type=int, default=4096)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("skipped: no CUDA driver / no GPU")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(a.seed)
    dev = torch.cuda.get_device_name(0)
    vocab = [int(x) for x in a.vocab.split(",")]
    heads = [int(x) for x in a.heads.split(",")]
    heads += [heads[-1]] * (len(vocab) - len(heads))
    for V, nh in zip(vocab, heads):
        Dict = torch.randn(V, a.D, device="cuda")
        H = torch.randn(nh, a.N, a.D, device="cuda")
        # P and |P| dominate: 2 x V·N fp32 per head, plus the residual and lstsq workspaces
        per_head = 4 * (2 * V * a.N + 4 * a.N * a.D + a.k * (a.D + a.N))
        free, _ = torch.cuda.mem_get_info()
        G = a.group or max(1, min(nh, int(0.6 * free) // per_head))
        somp(H[:1], Dict, 2)  # warm-up: kernels, cuBLAS / cuSOLVER handles
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        evr = []
        for g0 in range(0, nh, G):
            _, e = somp(H[g0:g0 + G], Dict, a.k)
            evr.append(e)
        torch.cuda.synchronize()
        t = time.perf_counter() - t0
        ev = torch.cat(evr).mean().item()
        rec = {"bench": "torch_somp", "V": V, "N": a.N, "D": a.D, "k": a.k, "heads": nh, "group": G,
               "s": round(t, 3), "ms_per_head": round(t / nh * 1e3, 3),
               "s_extrapolated": round(t / nh * a.report_heads, 1),
               "extrapolated_heads": a.report_heads, "mean_evr": round(ev, 5), "device": dev,
               "torch": torch.__version__}
        print(f"V={V:<6} {nh} heads in {t:.2f}s ({t / nh * 1e3:.1f} ms/head, "
              f"{t / nh * a.report_heads:.0f}s for {a.report_heads} heads), mean EVR {ev:.4f}",
              flush=True)
        print(json.dumps(rec), flush=True)
        del Dict, H
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
