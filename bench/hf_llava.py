#!/usr/bin/env python3
"""hf_llava.py: the transformers peer of bench_cuda's llava section. LlavaNextForConditionalGeneration
at the llava-v1.6-mistral-7b shape (CLIP ViT-L/14-336 with features from hidden_states[-2] without
CLS, the v1.6 anyres pinpoints, a Mistral-7B-Instruct-v0.2 decoder with V = 32064), random bf16
weights made on the GPU from a config (nothing downloaded), attn_implementation="sdpa".

Measured, each one warm-up then the median of --reps timed calls with torch.cuda.synchronize()
around them, in the same units and with the same FLOP counts as bench_cuda:
  llava_tower    the vision tower as the model calls it, vision_tower(pixels, output_hidden_states
                 =True).hidden_states[-2][:, 1:], over 1, 5, 10 tiles of random normalised pixels.
                 transformers runs all 24 layers to return hidden_states[-2]; bench_cuda runs the
                 23 that feed it. "gflop" counts the 23 (the work the output needs), so tflops on
                 the two sides are rates of the same work; "layers_run" says what ran.
  llava_prefill  one 672x672 image: pixel_values [1, 5, 3, 336, 336] and image_sizes [[672, 672]]
                 as the processor lays them out, input_ids = the same stand-in prompt ids as
                 bench_cuda with the image token repeated once per image feature (counted from the
                 processor's formula and checked against the model's own get_image_features +
                 pack_image_features), use_cache=True, logits of the last position only
                 (logits_to_keep=1; num_logits_to_keep in transformers 4). Also vision_ms (the
                 model's get_image_features + pack_image_features alone) and decoder_noinject_ms
                 (the same forward without pixel_values: the image tokens' embeddings looked up).
A bf16 GEMM 8192^3 through torch.matmul gives this process's ceiling for "mfu". One JSON line per
result ({"bench":"hf",...}), comparable with bench_cuda's {"kind":"llava_tower"} (by tiles) and
{"kind":"llava_prefill"} lines.

    python3 bench/hf_llava.py [--tiles 1,5,10] [--reps 5] [--seed S]
    python3 bench/hf_llava.py --tiny --device cpu     # a few-layer model in float32: checks the
                                                      # script (transformers 4.46 + torch 1.13 here)

transformers 4 / 5 differences handled here: `dtype=` vs `torch_dtype=`, the RoPE base in
text_config.rope_parameters (5) vs rope_theta (4), logits_to_keep vs num_logits_to_keep, the
submodules under model.model (4.52+) or on the top model (4.46), get_image_features returning the
packed features inside a BaseModelOutputWithPooling (5) or the unpacked per-image tiles (4.46),
pack_image_features returning a tensor (4.46) or a list.
"""
import argparse
import contextlib
import inspect
import json
import math
import statistics
import sys
import time

import torch
import transformers
from transformers import LlavaNextConfig, LlavaNextForConditionalGeneration

MAJOR = int(transformers.__version__.split(".")[0])
IMAGE_TOKEN = 32000
# bench_cuda's stand-in for the tokenized "[INST] <image>\nWhat is shown in this image? [/INST]"
PRE = [1, 733, 16289, 28793, 28705]
POST = [28705, 13, 3195, 349, 4894, 297, 456, 3469, 28804, 733, 28748, 16289, 28793]


def llava_config(tiny):
    """The same shapes as bench_cuda's llava section (and its --tiny)."""
    text = dict(model_type="mistral", vocab_size=32064, hidden_size=4096, intermediate_size=14336,
                num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                max_position_embeddings=32768, rms_norm_eps=1e-5, sliding_window=None,
                tie_word_embeddings=False)
    vision = dict(model_type="clip_vision_model", hidden_size=1024, intermediate_size=4096,
                  num_hidden_layers=24, num_attention_heads=16, image_size=336, patch_size=14,
                  hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=768)
    S = 336
    if tiny:
        text.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=16)
        vision.update(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                      image_size=56, projection_dim=32)
        S = 56
    if MAJOR >= 5:
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 1e6}
    else:
        text["rope_theta"] = 1e6
    pinpoints = [[S, 2 * S], [2 * S, S], [2 * S, 2 * S], [3 * S, S], [S, 3 * S]]
    side = S // vision["patch_size"]
    cfg = LlavaNextConfig(vision_config=vision, text_config=text, image_grid_pinpoints=pinpoints,
                          vision_feature_layer=-2, vision_feature_select_strategy="default",
                          projector_hidden_act="gelu", tie_word_embeddings=False,
                          image_token_index=IMAGE_TOKEN,
                          # transformers 4.46 takes fewer image tokens than this for the legacy
                          # (unexpanded) prompt path; ours are expanded
                          image_seq_length=side * side)
    for name in ("image_token_index", "image_token_id"):  # 4.46 / later spelling
        try:
            setattr(cfg, name, IMAGE_TOKEN)
        except AttributeError:
            pass
    return cfg


def build_model(cfg, device, dtype, attn):
    """Random weights allocated and initialised on the device (no fp32 host copy of 7.5B)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        # torch >= 2.0 places new tensors with `with torch.device(...)`; the CPU needs nothing
        ctx = torch.device(device) if hasattr(torch.device, "__enter__") else contextlib.nullcontext()
        with ctx:
            try:
                model = LlavaNextForConditionalGeneration._from_config(cfg, attn_implementation=attn,
                                                                       dtype=dtype)
            except TypeError:  # transformers 4: torch_dtype
                model = LlavaNextForConditionalGeneration._from_config(cfg, attn_implementation=attn,
                                                                       torch_dtype=dtype)
    finally:
        torch.set_default_dtype(old)
    return model.to(dtype).eval()


def select_best_resolution(h, w, pinpoints):
    """transformers' select_best_resolution: most effective pixels, then least waste."""
    best, best_eff, best_waste = None, -1, math.inf
    for ph, pw in pinpoints:
        scale = min(pw / w, ph / h)
        eff = min(int(w * scale) * int(h * scale), w * h)
        waste = ph * pw - eff
        if eff > best_eff or (eff == best_eff and waste < best_waste):
            best, best_eff, best_waste = (ph, pw), eff, waste
    return best


def num_image_tokens(h, w, cfg):
    """LlavaNextProcessor._get_number_of_features ("default": no CLS): the base tile's patches,
    then the unpadded grid map with one image_newline per row. Also the number of tiles."""
    S, p = cfg.vision_config.image_size, cfg.vision_config.patch_size
    ph, pw = select_best_resolution(h, w, cfg.image_grid_pinpoints)
    side = S // p
    cur_h, cur_w = ph // S * side, pw // S * side
    if w / h > cur_w / cur_h:
        new_h = int(round(h * (cur_w / w), 7))
        cur_h -= (cur_h - new_h) // 2 * 2
    else:
        new_w = int(round(w * (cur_h / h), 7))
        cur_w -= (cur_w - new_w) // 2 * 2
    return side * side + cur_h * cur_w + cur_h, 1 + (ph // S) * (pw // S)


def rows_of(x):
    """Feature rows in whatever get_image_features / pack_image_features returned."""
    x = getattr(x, "pooler_output", x)
    if isinstance(x, torch.Tensor):
        return x.shape[0] if x.dim() == 2 else x.shape[0] * x.shape[1]
    return sum(rows_of(t) for t in x)


def image_features(model, inner, pixel_values, image_sizes):
    """The model's own image path: tower, projector, packing (transformers 4.46 packs outside
    get_image_features, 4.52+ inside)."""
    f = inner.get_image_features(pixel_values, image_sizes, vision_feature_layer=-2,
                                 vision_feature_select_strategy="default")
    f = getattr(f, "pooler_output", f)
    if isinstance(f, torch.Tensor):
        f = [f]
    f = list(f)
    if f[0].dim() == 3:  # per image [tiles, patches, Dt]: not packed yet
        f, _ = inner.pack_image_features(f, image_sizes, vision_feature_select_strategy="default",
                                         image_newline=inner.image_newline)
    return f


def tower_flops(cfg, tiles, layers):
    """bench_cuda's tower_flops: patch embedding + `layers` encoder layers."""
    v = cfg.vision_config
    D, F, S, p = v.hidden_size, v.intermediate_size, v.image_size, v.patch_size
    P = (S // p) ** 2
    N = P + 1
    layer = 2.0 * N * (4.0 * D * D + 2.0 * D * F) + 4.0 * N * N * D
    return tiles * (2.0 * P * D * 3 * p * p + layers * layer)


def prefill_flops(cfg, T):
    """bench_cuda's prefill_flops for one prompt of T positions (lm_head counted as it does)."""
    t = cfg.text_config
    Dh = getattr(t, "head_dim", None) or t.hidden_size // t.num_attention_heads
    Q, KVD, D = t.num_attention_heads * Dh, t.num_key_value_heads * Dh, t.hidden_size
    per_tok = 2.0 * t.num_hidden_layers * (2.0 * D * Q + 2.0 * D * KVD + 3.0 * D * t.intermediate_size)
    return (per_tok * T + 2.0 * Dh * t.num_attention_heads * t.num_hidden_layers * T * (T + 1)
            + 2.0 * t.vocab_size * D * 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiles", default="1,5,10")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--tiny", action="store_true", help="bench_cuda --tiny's few-layer shape")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    a = ap.parse_args()
    dev = a.device
    if dev == "cuda" and not torch.cuda.is_available():
        print("skipped: no CUDA driver / no GPU")
        return 0
    torch.manual_seed(a.seed)
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    dev_name = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu"
    base = {"bench": "hf", "device": dev_name, "tiny": a.tiny, "dtype": str(dtype).replace("torch.", ""),
            "torch": torch.__version__, "transformers": transformers.__version__}

    def timed(fn):
        ts = []
        for i in range(a.reps + 1):
            sync()
            t = time.perf_counter()
            out = fn()
            sync()
            if i:  # the first call is the warm-up
                ts.append(time.perf_counter() - t)
            del out
        return statistics.median(ts), len(ts)

    def emit(rec):
        print(json.dumps({**base, **rec}), flush=True)

    ceiling = None
    if dev == "cuda":  # bf16 GEMM 8192^3, two input sets alternated, as bench_cuda's ceiling
        n = 8192
        A = [torch.randn(n, n, device=dev, dtype=dtype) for _ in range(2)]
        B = [torch.randn(n, n, device=dev, dtype=dtype) for _ in range(2)]
        k = [0]

        def gemm():
            k[0] += 1
            return A[k[0] & 1] @ B[k[0] & 1]
        for _ in range(3):
            gemm()
        ts = []
        for _ in range(20):
            sync()
            t = time.perf_counter()
            gemm()
            sync()
            ts.append(time.perf_counter() - t)
        ceiling = 2.0 * n ** 3 / statistics.median(ts) / 1e12
        del A, B
        torch.cuda.empty_cache()
        print(f"# bf16 GEMM 8192^3 through torch.matmul: {ceiling:.1f} TFLOP/s", flush=True)
        emit({"kind": "ceiling", "name": "gemm_bf16_8192_torch", "tflops": round(ceiling, 2)})

    def mfu(tf):
        return round(tf / ceiling, 4) if ceiling else None

    cfg = llava_config(a.tiny)
    attn = "sdpa"
    t0 = time.perf_counter()
    try:
        model = build_model(cfg, dev, dtype, attn)
    except (ValueError, ImportError) as ex:
        if dev == "cuda":
            raise
        # torch < 2.1 (the CPU reference venv) has no SDPA: this mode only checks the script
        print(f"# sdpa unavailable here ({str(ex).splitlines()[0][:120]}); eager attention", flush=True)
        attn = "eager"
        cfg = llava_config(a.tiny)
        model = build_model(cfg, dev, dtype, attn)
    sync()
    inner = getattr(model, "model", model)  # 4.52+: LlavaNextModel under .model
    vt = inner.vision_tower
    n_params = sum(p.numel() for p in model.parameters())
    attn_used = {"model": getattr(model.config, "_attn_implementation", "?"),
                 "vision": getattr(vt.config, "_attn_implementation", "?"),
                 "text": getattr(model.config.text_config, "_attn_implementation", "?")}
    base["attn"] = attn_used
    print(f"# {dev_name}: torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{'tiny ' if a.tiny else ''}LlavaNext with {n_params / 1e9:.3f}B parameters ({dtype}) in "
          f"{time.perf_counter() - t0:.1f}s, attention {attn_used}", flush=True)
    v = cfg.vision_config
    S = v.image_size
    L_vis = v.num_hidden_layers
    used = L_vis + 1 - 2  # hidden_states[-2]: the output of layer L-1
    tiles = [int(x) for x in a.tiles.split(",")]

    print(f"{'tiles':>6} {'ms':>10} {'tiles/s':>10} {'TFLOP/s':>9}", flush=True)
    with torch.inference_mode():
        for n in tiles:
            pv = torch.randn(n, 3, S, S, device=dev, dtype=dtype)
            rec = {"kind": "llava_tower", "tiles": n, "layers": used, "layers_run": L_vis}
            try:
                t, reps = timed(lambda: vt(pv, output_hidden_states=True).hidden_states[-2][:, 1:])
                fl = tower_flops(cfg, n, used)
                tf = fl / t / 1e12
                rec.update(ms=round(t * 1e3, 3), tiles_per_s=round(n / t, 2), gflop=round(fl / 1e9, 6),
                           tflops=round(tf, 4), mfu=mfu(tf), reps=reps)
                print(f"{n:>6} {t * 1e3:>10.2f} {n / t:>10.1f} {tf:>9.2f}", flush=True)
            except torch.cuda.OutOfMemoryError if dev == "cuda" else MemoryError:
                rec.update(error="out of memory")
                print(f"{n:>6} out of memory", flush=True)
            del pv
            if dev == "cuda":
                torch.cuda.empty_cache()
            emit(rec)

        # one 2S x 2S image (672x672): base tile + 2x2 grid
        img = 2 * S
        n_feat, n_tiles = num_image_tokens(img, img, cfg)
        pixel_values = torch.randn(1, n_tiles, 3, S, S, device=dev, dtype=dtype)
        image_sizes = torch.tensor([[img, img]], device=dev)
        n_model = rows_of(image_features(model, inner, pixel_values, image_sizes))
        if n_model != n_feat:
            print(f"FAIL: the processor's formula gives {n_feat} image tokens, the model packs {n_model}")
            return 1
        ids = torch.tensor([PRE + [IMAGE_TOKEN] * n_feat + POST], device=dev)
        T = ids.shape[1]
        params = inspect.signature(model.forward).parameters
        keep = {"logits_to_keep": 1} if "logits_to_keep" in params else {"num_logits_to_keep": 1}
        rec = {"kind": "llava_prefill", "image": [img, img], "tiles": n_tiles, "image_tokens": n_feat,
               "tokens": T, "logits_arg": next(iter(keep))}
        try:
            last = {}

            def full():
                out = model(input_ids=ids, pixel_values=pixel_values, image_sizes=image_sizes,
                            use_cache=True, **keep)
                last["logits"] = out.logits
                return out
            t, reps = timed(full)
            lg = last.pop("logits")
            if lg.shape[1] != 1:
                print(f"FAIL: logits for {lg.shape[1]} positions, expected the last one only")
                return 1
            finite = bool(torch.isfinite(lg).all())
            tv, _ = timed(lambda: image_features(model, inner, pixel_values, image_sizes))
            td0, _ = timed(lambda: model(input_ids=ids, use_cache=True, **keep))
            fl_v = tower_flops(cfg, n_tiles, used) + 2.0 * n_tiles * (S // v.patch_size) ** 2 * (
                v.hidden_size * cfg.text_config.hidden_size + cfg.text_config.hidden_size ** 2)
            fl = fl_v + prefill_flops(cfg, T)
            tf = fl / t / 1e12
            rec.update(ms=round(t * 1e3, 3), vision_ms=round(tv * 1e3, 3),
                       decoder_noinject_ms=round(td0 * 1e3, 3), tokens_per_s=round(T / t, 1),
                       gflop=round(fl / 1e9, 6), vision_gflop=round(fl_v / 1e9, 6), tflops=round(tf, 4),
                       mfu=mfu(tf), reps=reps, finite=finite)
            print(f"# one {img}x{img} image: {n_tiles} tiles, {n_feat} image tokens, {T} positions: "
                  f"{t * 1e3:.2f} ms ({T / t:.0f} positions/s, {tf:.2f} TFLOP/s); image features "
                  f"alone {tv * 1e3:.2f} ms, the forward without pixels {td0 * 1e3:.2f} ms"
                  f"{'' if finite else '; NON-FINITE logits'}", flush=True)
        except torch.cuda.OutOfMemoryError if dev == "cuda" else MemoryError:
            rec.update(error="out of memory")
            print("prefill: out of memory", flush=True)
        emit(rec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
