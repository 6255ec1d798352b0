#!/usr/bin/env python3
"""make_fixtures.py: the independent Hugging Face reference for headpursuit's parity tests.

Writes tests/fixtures/ (see tests/fixtures/README.md for what every file is):
  tiny-mistral/, tiny-mistral-sharded/, tiny-llama/, tiny-llama-bf16/  random-weight models
  <model>/ref/   prompts, logits, greedy continuations, head contributions, edited logits
  tiny-qwen2/, tiny-llama-bias/  random-weight models with linear-layer biases
  tiny-llama-act-{gelu,gelu_pytorch_tanh,relu}/  one random Llama with three MLP activations
  smollm2-ref/, qwen2.5-0.5b-ref/   references for the real GGUFs in models/ (skipped if absent)

Run with the reference environment (tests/ref/setup_ref_env.sh):
  .venv-ref/bin/python tests/ref/make_fixtures.py [--only tiny|bias|act|smollm2|qwen2.5-0.5b]
Everything is float32, eager attention, fixed seeds: re-running reproduces the same files.
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch
import transformers
import transformers.generation.utils as gen_utils
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)

# Debian's torch 1.13 on Python 3.11 cannot import torch.distributed.fsdp (a dataclass error);
# generate() only imports it to ask whether the model is FSDP-wrapped. It is not.
gen_utils.is_fsdp_managed_module = lambda module: False

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "tests", "fixtures")
GGUF = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")

WEIGHT_STD = 0.2   # ~10x the default init: peaked attention and logits, so bugs show
NORM_NOISE = 0.1   # RMSNorm weights 1 + N(0, 0.1^2): a norm-weight bug changes the output
N_NEW = 8          # greedy tokens generated per prompt for the tiny models
EDIT_HEADS = [[0, 1], [1, 2]]                 # (layer, head) pairs edited
EDITS = [("inv", -1.0), ("zero", 0.0), ("enh5", 5.0)]
GREEDY_EDIT = "inv"                           # edit whose greedy continuation is also saved
MIN_MARGIN = 1e-3  # see make_prompts


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def save_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def randomize(model, seed):
    """Re-initialises every parameter: norms ~ 1 + noise, everything else N(0, WEIGHT_STD^2)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():  # tied lm_head is listed once (as embed_tokens)
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith("norm.weight"):
                p.copy_(1.0 + NORM_NOISE * noise)
            else:
                p.copy_(WEIGHT_STD * noise)


def greedy_margin(model, ids, n_new):
    """Smallest (top1 - top2) / max|logit| over the greedy decisions of a no-cache argmax loop."""
    seq, margin = list(ids), np.inf
    for _ in range(n_new):
        row = forward_logits(model, seq)[-1]
        top = np.sort(row)[-2:]
        margin = min(margin, (top[1] - top[0]) / np.abs(row).max())
        seq.append(int(np.argmax(row)))
    return margin


def make_prompts(seed, vocab, lengths, models):
    """Random prompts whose greedy decisions are unambiguous: each prompt is redrawn until every
    argmax on its greedy path, in every (model, edit) of `models`, leads the runner-up by at least
    MIN_MARGIN of the row's max |logit| (10x the parity tolerance), so a correct implementation
    within tolerance cannot flip a greedy token."""
    rng = np.random.default_rng(seed)
    prompts = []
    for n in lengths:
        for _ in range(100):
            ids = rng.integers(0, vocab, size=n).tolist()
            if all(greedy_margin_with(m, edit, ids) >= MIN_MARGIN for m, edit in models):
                prompts.append(ids)
                break
        else:
            raise SystemExit(f"no prompt of length {n} with greedy margins >= {MIN_MARGIN}")
    return prompts


def greedy_margin_with(model, edit, ids):
    hooks = HeadHooks(model, EDIT_HEADS, dict(EDITS)[edit]) if edit else None
    try:
        return greedy_margin(model, ids, N_NEW)
    finally:
        if hooks:
            hooks.remove()


@torch.no_grad()
def forward_logits(model, ids):
    return model(torch.tensor([ids]), use_cache=False).logits[0].float().numpy()


def padded_logits(model, prompts):
    """[B, Tmax, V] float32, each prompt run alone (no padding), zeros past its length."""
    V = model.config.vocab_size
    out = np.zeros((len(prompts), max(map(len, prompts)), V), dtype=np.float32)
    for b, ids in enumerate(prompts):
        out[b, : len(ids)] = forward_logits(model, ids)
    return out


@torch.no_grad()
def greedy(model, ids, n_new):
    """model.generate greedy (KV cache), never stopping at EOS; cross-checked against a plain
    argmax loop that recomputes the whole sequence each step (no cache)."""
    out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                         do_sample=False, max_new_tokens=n_new, min_new_tokens=n_new,
                         eos_token_id=None, pad_token_id=0)
    new = out[0, len(ids):].tolist()
    seq = list(ids)
    for _ in range(n_new):
        seq.append(int(np.argmax(forward_logits(model, seq)[-1])))
    if seq[len(ids):] != new:
        raise SystemExit(f"generate() {new} != no-cache greedy {seq[len(ids):]} for prompt {ids}")
    return new


class HeadHooks:
    """Forward pre-hooks on every layer's self_attn.o_proj: record the o_proj input z
    ([1, T, H*Dh], the concatenated per-head attention outputs) and optionally scale some heads'
    slices of it by alpha (the Head Pursuit edit)."""

    def __init__(self, model, edit_heads=(), alpha=1.0):
        cfg = model.config
        self.H = cfg.num_attention_heads
        self.Dh = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.H
        self.z = {}
        self.handles = []
        for l, layer in enumerate(model.model.layers):
            heads = [h for (ll, h) in edit_heads if ll == l]
            self.handles.append(layer.self_attn.o_proj.register_forward_pre_hook(self._hook(l, heads, alpha)))

    def _hook(self, l, heads, alpha):
        def hook(module, args):
            x = args[0]
            if heads:
                x = x.clone()
                for h in heads:
                    x[..., h * self.Dh:(h + 1) * self.Dh] *= alpha
            self.z[l] = x.detach()[0].clone()  # [T, H*Dh], after any edit
            return (x,) + tuple(args[1:])
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


@torch.no_grad()
def head_contributions(model, prompts):
    """heads_mean, heads_last: [B, L, H, D] float32. c[l,h] = z[l,h] W_O[:, h*Dh:(h+1)*Dh]^T."""
    cfg = model.config
    L, H, D = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.hidden_size
    hooks = HeadHooks(model)
    Dh = hooks.Dh
    mean = np.zeros((len(prompts), L, H, D), dtype=np.float32)
    last = np.zeros_like(mean)
    try:
        for b, ids in enumerate(prompts):
            model(torch.tensor([ids]), use_cache=False)
            for l, layer in enumerate(model.model.layers):
                W = layer.self_attn.o_proj.weight  # [D, H*Dh]
                z = hooks.z[l]                     # [T, H*Dh]
                for h in range(H):
                    c = z[:, h * Dh:(h + 1) * Dh] @ W[:, h * Dh:(h + 1) * Dh].T  # [T, D]
                    mean[b, l, h] = c.mean(dim=0).numpy()
                    last[b, l, h] = c[-1].numpy()
    finally:
        hooks.remove()
    return mean, last


def check_capture(model, ids):
    """The per-head contributions must add up to o_proj's output less its bias: sum_h c = o_proj(z) - b."""
    outs = {}
    handles = [layer.self_attn.o_proj.register_forward_hook(
        lambda m, a, o, l=l: outs.__setitem__(l, o[0].detach().clone()))
        for l, layer in enumerate(model.model.layers)]
    try:
        _, last = head_contributions(model, [ids])
    finally:
        for h in handles:
            h.remove()
    for l, layer in enumerate(model.model.layers):
        bias = layer.self_attn.o_proj.bias  # o_proj's bias belongs to no head
        o = outs[l][-1].numpy() - (bias.detach().numpy() if bias is not None else 0)
        err = np.abs(last[0, l].sum(axis=0) - o).max()
        assert err < 1e-4, f"layer {l}: sum of head contributions != o_proj output ({err})"


def visible_keys(model, ids):
    """Which key positions each query attends to in layer 0 (nonzero eager attention weights)."""
    with torch.no_grad():
        att = model(torch.tensor([ids]), use_cache=False, output_attentions=True).attentions[0][0, 0]
    return [[j for j in range(len(ids)) if att[i, j] > 0] for i in range(len(ids))]


def write_ref(model, name, prompts, with_heads=True):
    ref = os.path.join(FIX, name, "ref")
    os.makedirs(ref, exist_ok=True)
    save_json(os.path.join(ref, "prompts.json"), prompts)
    np.save(os.path.join(ref, "logits.npy"), padded_logits(model, prompts))
    save_json(os.path.join(ref, "greedy.json"), {
        "max_new_tokens": N_NEW, "stop_at_eos": False,
        "continuations": [greedy(model, p, N_NEW) for p in prompts]})
    if not with_heads:
        return
    check_capture(model, prompts[-1])
    mean, last = head_contributions(model, prompts)
    np.save(os.path.join(ref, "heads_mean.npy"), mean)
    np.save(os.path.join(ref, "heads_last.npy"), last)
    edits = []
    for ename, alpha in EDITS:
        hooks = HeadHooks(model, EDIT_HEADS, alpha)
        try:
            entry = {"name": ename, "heads": EDIT_HEADS, "alpha": alpha, "logits": f"edited_{ename}.npy"}
            np.save(os.path.join(ref, entry["logits"]), padded_logits(model, prompts))
            if ename == GREEDY_EDIT:
                entry["greedy"] = f"greedy_edited_{ename}.json"
                save_json(os.path.join(ref, entry["greedy"]), {
                    "max_new_tokens": N_NEW, "stop_at_eos": False,
                    "continuations": [greedy(model, p, N_NEW) for p in prompts]})
        finally:
            hooks.remove()
        edits.append(entry)
    save_json(os.path.join(ref, "edits.json"), edits)
    # an edit must actually change the output, or the edit test proves nothing
    base = np.load(os.path.join(ref, "logits.npy"))
    for e in edits:
        d = np.abs(np.load(os.path.join(ref, e["logits"])) - base).max()
        assert d > 1e-2 or e["alpha"] == 1.0, f"edit {e['name']} changed nothing ({d})"


def build_tiny():
    # ---- tiny Mistral: untied, sliding window 5 (shorter than most prompts) ----
    torch.manual_seed(0)
    mcfg = MistralConfig(
        vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=64,
        rope_theta=10000.0, sliding_window=5, rms_norm_eps=1e-5, tie_word_embeddings=False,
        bos_token_id=1, eos_token_id=2, torch_dtype="float32", attn_implementation="eager")
    mistral = MistralForCausalLM(mcfg).eval()
    randomize(mistral, seed=1)
    mprompts = make_prompts(2, 256, [2, 5, 7, 9, 12], [(mistral, None), (mistral, GREEDY_EDIT)])
    # EOS = a token that prompt 1's greedy continuation produces at its 4th step, so that a
    # generate test can tell --no-eos (8 tokens) from stopping at EOS (3 tokens).
    eos = greedy(mistral, mprompts[1], N_NEW)[3]
    mistral.config.eos_token_id = mistral.generation_config.eos_token_id = eos
    d = os.path.join(FIX, "tiny-mistral")
    mistral.save_pretrained(d, safe_serialization=True)
    mistral.save_pretrained(os.path.join(FIX, "tiny-mistral-sharded"), safe_serialization=True,
                            max_shard_size="200KB")
    # reload from disk so the reference uses exactly the saved weights
    mistral = MistralForCausalLM.from_pretrained(d, torch_dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    vis = visible_keys(mistral, mprompts[-1])
    W = mcfg.sliding_window
    assert all(v == list(range(max(0, i - W + 1), i + 1)) for i, v in enumerate(vis)), vis
    log(f"tiny-mistral: query 11 with sliding_window={W} sees keys {vis[11]}")
    write_ref(mistral, "tiny-mistral", mprompts)

    # ---- tiny Llama: GQA 6/2, head_dim 16 != 48/6, tied embeddings ----
    lcfg = LlamaConfig(
        vocab_size=300, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=6, num_key_value_heads=2, head_dim=16, max_position_embeddings=64,
        rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2, torch_dtype="float32", attn_implementation="eager")
    llama = LlamaForCausalLM(lcfg).eval()
    randomize(llama, seed=3)
    assert llama.lm_head.weight.data_ptr() == llama.model.embed_tokens.weight.data_ptr()
    d = os.path.join(FIX, "tiny-llama")
    llama.save_pretrained(d, safe_serialization=True)
    llama.to(torch.bfloat16).save_pretrained(os.path.join(FIX, "tiny-llama-bf16"), safe_serialization=True)
    llama = LlamaForCausalLM.from_pretrained(d, torch_dtype=torch.float32,
                                             attn_implementation="eager").eval()
    assert llama.model.layers[0].self_attn.q_proj.weight.shape == (96, 48)
    bf = LlamaForCausalLM.from_pretrained(os.path.join(FIX, "tiny-llama-bf16"), torch_dtype=torch.float32,
                                          attn_implementation="eager").eval()  # bf16 upcast to f32
    with open(os.path.join(FIX, "tiny-llama-bf16", "config.json")) as f:
        assert json.load(f)["torch_dtype"] == "bfloat16"
    for (n, a), (_, b) in zip(llama.named_parameters(), bf.named_parameters()):
        assert torch.equal(a.to(torch.bfloat16).float(), b), n
    lprompts = make_prompts(4, 300, [3, 6, 8, 12], [(llama, None), (llama, GREEDY_EDIT), (bf, None)])
    write_ref(llama, "tiny-llama", lprompts)
    # ---- tiny Llama in bfloat16: reference = the bf16 weights upcast to float32 ----
    write_ref(bf, "tiny-llama-bf16", lprompts, with_heads=False)


def build_bias_models():
    """Linear-layer biases: a tiny Qwen2 (q/k/v biases, GQA 4/2, tied) and a tiny Llama with
    attention_bias (q/k/v/o) and mlp_bias (gate/up/down)."""
    qcfg = Qwen2Config(
        vocab_size=260, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False,
        bos_token_id=1, eos_token_id=2, torch_dtype="float32", attn_implementation="eager")
    qwen = Qwen2ForCausalLM(qcfg).eval()
    randomize(qwen, seed=5)
    assert qwen.model.layers[0].self_attn.q_proj.bias is not None
    assert qwen.model.layers[0].self_attn.o_proj.bias is None
    d = os.path.join(FIX, "tiny-qwen2")
    qwen.save_pretrained(d, safe_serialization=True)
    qwen = Qwen2ForCausalLM.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager").eval()
    qprompts = make_prompts(6, 260, [3, 7, 10], [(qwen, None), (qwen, GREEDY_EDIT)])
    write_ref(qwen, "tiny-qwen2", qprompts)

    bcfg = LlamaConfig(
        vocab_size=200, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
        rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False, attention_bias=True,
        mlp_bias=True, bos_token_id=1, eos_token_id=2, torch_dtype="float32",
        attn_implementation="eager")
    bl = LlamaForCausalLM(bcfg).eval()
    randomize(bl, seed=7)
    assert bl.model.layers[0].self_attn.o_proj.bias is not None and bl.model.layers[0].mlp.up_proj.bias is not None
    d = os.path.join(FIX, "tiny-llama-bias")
    bl.save_pretrained(d, safe_serialization=True)
    bl = LlamaForCausalLM.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager").eval()
    bprompts = make_prompts(8, 200, [4, 9], [(bl, None), (bl, GREEDY_EDIT)])
    write_ref(bl, "tiny-llama-bias", bprompts)


ACTS = ("gelu", "gelu_pytorch_tanh", "relu")


def build_act_models():
    """hidden_act other than silu: the same random weights (seed 9) under each activation, so a
    model run with the wrong one is off. GQA 4/2, untied, prompts up to 10 tokens."""
    for act in ACTS:
        cfg = LlamaConfig(
            vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
            rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False, hidden_act=act,
            bos_token_id=1, eos_token_id=2, torch_dtype="float32", attn_implementation="eager")
        torch.manual_seed(0)
        m = LlamaForCausalLM(cfg).eval()
        randomize(m, seed=9)
        d = os.path.join(FIX, f"tiny-llama-act-{act}")
        m.save_pretrained(d, safe_serialization=True)
        m = LlamaForCausalLM.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager").eval()
        assert m.config.hidden_act == act
        prompts = make_prompts(10, 128, [3, 6, 10], [(m, None)])
        write_ref(m, f"tiny-llama-act-{act}", prompts, with_heads=False)


# Real GGUF checkpoints checked against transformers' GGUF loader: name -> (file, tie, stop token,
# whether the chat template inserts a default system prompt).
GGUF_REFS = {
    "smollm2": ("SmolLM2-135M-Instruct.Q4_1.gguf", True, "<|im_end|>", True),
    "qwen2.5-0.5b": ("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", False, "<|im_end|>", True),
    # checked once, not committed (3 MB of logits for a model CI does not download)
    "qwen2.5-1.5b": ("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", False, "<|im_end|>", True),
}


def build_gguf_ref(name):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    fname, tie, stop, default_system = GGUF_REFS[name]
    path = os.path.join(ROOT, "models", fname)
    if not os.path.exists(path):
        log(f"skipping {name}-ref: {path} absent (scripts/fetch_model.sh)")
        return
    mdir, mfile = os.path.split(os.path.realpath(path))
    tok = AutoTokenizer.from_pretrained(mdir, gguf_file=mfile)
    # A GGUF without output.weight is tied; transformers 4.46 reads tie_word_embeddings=False from
    # GGUF metadata and would leave lm_head randomly initialised, so tying is forced there.
    model = AutoModelForCausalLM.from_pretrained(mdir, gguf_file=mfile, torch_dtype=torch.float32,
                                                 tie_word_embeddings=tie, attn_implementation="eager").eval()
    if tie:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    stop_id = tok.convert_tokens_to_ids(stop)

    # the GGUF's own template (tokenizer.chat_template) inserts a default system prompt
    user = "What is the capital of France?"
    chat_default = tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                           add_generation_prompt=True)
    chat_plain = f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    assert chat_default.endswith(chat_plain)
    assert chat_default.startswith("<|im_start|>system\n") == default_system, chat_default
    texts = [chat_default, chat_plain, "The capital of France is"]
    short_text = "Paris is"  # all-position logits, kept to 2 tokens for size
    enc = lambda s: tok(s, add_special_tokens=False)["input_ids"]
    prompts = [enc(s) for s in texts]
    short = enc(short_text)
    out = os.path.join(FIX, f"{name}-ref")
    os.makedirs(out, exist_ok=True)
    last = np.stack([forward_logits(model, p)[-1] for p in prompts]).astype(np.float32)
    np.save(os.path.join(out, "logits_last.npy"), last)
    np.save(os.path.join(out, "logits_short.npy"), forward_logits(model, short).astype(np.float32))
    conts = []
    for p in prompts:
        with torch.no_grad():
            o = model.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                               do_sample=False, max_new_tokens=16, eos_token_id=stop_id, pad_token_id=stop_id)
        new = o[0, len(p):].tolist()
        stopped = bool(new) and new[-1] == stop_id
        ids = new[:-1] if stopped else new
        rows = forward_logits(model, p + new[:-1])[len(p) - 1:]  # the rows each new token came from
        assert (rows.argmax(axis=1) == np.array(new)).all()
        top = np.sort(rows, axis=1)[:, -2:]
        margin = float(((top[:, 1] - top[:, 0]) / np.abs(rows).max(axis=1)).min())
        conts.append({"ids": ids, "stopped_at_eos": stopped, "min_rel_margin": margin,
                      "text": tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)})
        log(f"{name}:", repr(texts[len(conts) - 1][-40:]), "->", repr(conts[-1]["text"]))
    save_json(os.path.join(out, "prompts.json"), prompts)
    save_json(os.path.join(out, "prompts_short.json"), [short])
    save_json(os.path.join(out, "ref.json"), {
        "model": f"models/{fname}",
        "texts": texts, "short_text": short_text,
        "encode": "tokenizer from the GGUF via transformers, add_special_tokens=False",
        "logits_last": "logits_last.npy [B, V]: last position of each prompt in prompts.json",
        "logits_short": "logits_short.npy [T, V]: every position of prompts_short.json[0]",
        "greedy": {"max_new_tokens": 16, "eos_token_id": stop_id,
                   "note": "ids exclude the stop token; stopped_at_eos says whether it was produced",
                   "continuations": conts},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    })


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["tiny", "bias", "act"] + list(GGUF_REFS))
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, numpy {np.__version__}")
    if args.only in (None, "tiny"):
        for n in ("tiny-mistral", "tiny-mistral-sharded", "tiny-llama", "tiny-llama-bf16"):
            shutil.rmtree(os.path.join(FIX, n), ignore_errors=True)
        build_tiny()
    if args.only in (None, "bias"):
        for n in ("tiny-qwen2", "tiny-llama-bias"):
            shutil.rmtree(os.path.join(FIX, n), ignore_errors=True)
        build_bias_models()
    if args.only in (None, "act"):
        for act in ACTS:
            shutil.rmtree(os.path.join(FIX, f"tiny-llama-act-{act}"), ignore_errors=True)
        build_act_models()
    for name in GGUF_REFS:
        if args.only in (None, name):
            build_gguf_ref(name)


if __name__ == "__main__":
    main()
