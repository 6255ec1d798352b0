#!/usr/bin/env python3
"""hf_prefill.py: the PyTorch peer of bench_cuda's end-to-end prefill. transformers'
MistralForCausalLM at the Mistral-7B-Instruct-v0.2 shape, random bf16 weights made on the GPU
from a config (nothing downloaded), attn_implementation="sdpa", KV cache on (use_cache=True) and
logits for each prompt's last token only (logits_to_keep=1), as bench_cuda does. Timing:
torch.cuda.synchronize() around each forward, one warm-up, median of repeats. One JSON line per
grid point ({"bench":"hf",...}), comparable with bench_cuda's {"kind":"prefill"} lines.

    python3 bench/hf_prefill.py [--batches 1,8,64] [--prompts 64,512,2048] [--reps 5]

transformers 5 differences handled here: `dtype=` replaces `torch_dtype=`, and the RoPE base
lives in config.rope_parameters (v4: config.rope_theta); `logits_to_keep` (v4.50+).
"""
import argparse
import json
import statistics
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, MistralConfig

MAJOR = int(transformers.__version__.split(".")[0])


def mistral_config():
    kw = dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
              num_attention_heads=32, num_key_value_heads=8, head_dim=128,
              max_position_embeddings=32768, rms_norm_eps=1e-5, sliding_window=None,
              tie_word_embeddings=False)
    if MAJOR >= 5:
        kw["rope_parameters"] = {"rope_type": "default", "rope_theta": 1e6}
    else:
        kw["rope_theta"] = 1e6
    return MistralConfig(**kw)


def build_model(cfg):
    """Random bf16 weights allocated and initialised on the GPU (no 29 GB fp32 host copy)."""
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        try:
            model = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa", dtype=torch.bfloat16)
        except TypeError:  # transformers 4: torch_dtype
            model = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa",
                                                     torch_dtype=torch.bfloat16)
    torch.set_default_dtype(torch.float32)
    return model.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="1,8,64")
    ap.add_argument("--prompts", default="64,512,2048")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("skipped: no CUDA driver / no GPU")
        return 0
    torch.manual_seed(a.seed)
    torch.backends.cuda.matmul.allow_tf32 = False
    dev = torch.cuda.get_device_name(0)
    t0 = time.perf_counter()
    model = build_model(mistral_config())
    torch.cuda.synchronize()
    n_params = sum(p.numel() for p in model.parameters())
    attn = getattr(model.config, "_attn_implementation", "?")
    print(f"# {dev}: torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{n_params / 1e9:.2f}B parameters in {time.perf_counter() - t0:.1f}s, attention {attn}",
          flush=True)
    batches = [int(x) for x in a.batches.split(",")]
    prompts = [int(x) for x in a.prompts.split(",")]
    print(f"{'batch':>6} {'prompt':>6} {'ms':>10} {'tokens/s':>12}", flush=True)
    for B in batches:
        for P in prompts:
            ids = torch.randint(0, 32000, (B, P), device="cuda")
            rec = {"bench": "hf", "kind": "prefill", "batch": B, "prompt": P, "device": dev,
                   "attn": attn, "torch": torch.__version__, "transformers": transformers.__version__}
            try:
                with torch.inference_mode():
                    ts = []
                    for i in range(a.reps + 1):
                        torch.cuda.synchronize()
                        t = time.perf_counter()
                        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
                        torch.cuda.synchronize()
                        if i:  # the first run is the warm-up
                            ts.append(time.perf_counter() - t)
                        del out
                t = statistics.median(ts)
                rec.update(ms=round(t * 1e3, 3), tokens_per_s=round(B * P / t, 1), reps=len(ts))
                print(f"{B:>6} {P:>6} {t * 1e3:>10.2f} {B * P / t:>12.0f}", flush=True)
            except torch.cuda.OutOfMemoryError:
                rec.update(error="out of memory")
                print(f"{B:>6} {P:>6} out of memory", flush=True)
            torch.cuda.empty_cache()
            print(json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
