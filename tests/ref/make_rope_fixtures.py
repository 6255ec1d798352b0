#!/usr/bin/env python3
"""make_rope_fixtures.py: Hugging Face references for RoPE scaling (rope_scaling "llama3" as in
Llama 3.1/3.2, and "linear").

Writes tests/fixtures/ (see tests/fixtures/README.md):
  tiny-llama-rope-llama3/   random LlamaForCausalLM, rope_scaling llama3 (factor 8, low 1, high 4,
                            original_max_position_embeddings 64): with head_dim 16 and theta 1e4
                            its 8 rotary pairs cover all three bands (1 kept, 2 interpolated, 5
                            divided by the factor); prompts up to 100 tokens, past 64
  tiny-llama-rope-llama3.gguf  the same weights as llama.cpp's converter writes them: Q/K rows
                            interleaved, the llama3 scaling as the rope_freqs.weight tensor (the
                            converter's formula), a placeholder vocabulary; same reference
  tiny-llama-rope-linear/   the same shapes with rope_scaling linear (factor 4)
  <model>/ref/              prompts.json, logits.npy, greedy.json (as make_fixtures.py)

Run with the reference environment (tests/ref/setup_ref_env.sh):
  .venv-ref/bin/python tests/ref/make_rope_fixtures.py
Float32, eager attention, fixed seeds: re-running reproduces the same files.
"""
import math
import os
import shutil
import sys

import numpy as np
import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402  (randomize, make_prompts, write_ref)

FIX = mf.FIX
LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 64}
LINEAR = {"type": "linear", "factor": 4.0}
LENGTHS = [7, 70, 100]


def make_model(scaling, seed):
    cfg = LlamaConfig(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
        rope_theta=10000.0, rope_scaling=dict(scaling), rms_norm_eps=1e-5,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, torch_dtype="float32",
        attn_implementation="eager")
    model = LlamaForCausalLM(cfg).eval()
    mf.randomize(model, seed)
    return model


def save(model, name):
    d = os.path.join(FIX, name)
    shutil.rmtree(d, ignore_errors=True)
    model.save_pretrained(d, safe_serialization=True)
    gen = os.path.join(d, "generation_config.json")
    if os.path.exists(gen):
        os.remove(gen)
    return LlamaForCausalLM.from_pretrained(d, torch_dtype=torch.float32,
                                            attn_implementation="eager").eval()


def rope_changes_logits(model, prompts):
    """The scaling must matter for these prompts: the same weights without it differ."""
    plain = LlamaForCausalLM(LlamaConfig(**{**model.config.to_dict(), "rope_scaling": None})).eval()
    plain.load_state_dict(model.state_dict())
    a, b = mf.padded_logits(model, prompts), mf.padded_logits(plain, prompts)
    rel = float(np.abs(a - b).max() / np.abs(a).max())
    assert rel > 1e-2, f"rope scaling changes the logits by only {rel}"
    return rel


def llama_cpp_freq_factors(cfg):
    """convert_hf_to_gguf.py's LlamaModel rope_freqs for rope_type llama3 (per rotary pair, the
    divisor of its frequency), computed as that converter does."""
    rs = cfg.rope_scaling
    dim = cfg.head_dim
    freqs = 1.0 / (cfg.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    lo_wl, hi_wl = old / lo, old / hi
    out = []
    for f in freqs.tolist():
        wl = 2 * math.pi / f
        if wl < hi_wl:
            out.append(1.0)
        elif wl > lo_wl:
            out.append(factor)
        else:
            s = (old / wl - lo) / (hi - lo)
            out.append(1 / ((1 - s) / factor + s))
    return np.array(out, dtype=np.float32)


def write_gguf(model, path):
    """llama.cpp's layout of the model: Q/K rows permuted to interleaved pairs, llama3 scaling
    as rope_freqs.weight, tied head (no output.weight), a placeholder vocabulary."""
    import gguf
    cfg = model.config
    H, KV, Dh = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}

    def permute(w, heads):  # HF rotate-half rows -> llama.cpp's interleaved pairs
        return w.reshape(heads, 2, Dh // 2, -1).swapaxes(1, 2).reshape(w.shape)

    w = gguf.GGUFWriter(path, arch="llama")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_key_length(Dh)
    w.add_value_length(Dh)
    w.add_rope_dimension_count(Dh)
    w.add_rope_freq_base(cfg.rope_theta)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_tokenizer_model("llama")
    w.add_token_list(["<unk>", "<s>", "</s>"] + [f"t{i}" for i in range(3, cfg.vocab_size)])
    w.add_token_scores([0.0] * cfg.vocab_size)
    w.add_token_types([2, 3, 3] + [1] * (cfg.vocab_size - 3))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    w.add_tensor("rope_freqs.weight", llama_cpp_freq_factors(cfg))
    for l in range(cfg.num_hidden_layers):
        p = f"model.layers.{l}."
        t = {"attn_norm": sd[p + "input_layernorm.weight"],
             "attn_q": permute(sd[p + "self_attn.q_proj.weight"], H),
             "attn_k": permute(sd[p + "self_attn.k_proj.weight"], KV),
             "attn_v": sd[p + "self_attn.v_proj.weight"],
             "attn_output": sd[p + "self_attn.o_proj.weight"],
             "ffn_norm": sd[p + "post_attention_layernorm.weight"],
             "ffn_gate": sd[p + "mlp.gate_proj.weight"],
             "ffn_up": sd[p + "mlp.up_proj.weight"],
             "ffn_down": sd[p + "mlp.down_proj.weight"]}
        for k, v in t.items():
            w.add_tensor(f"blk.{l}.{k}.weight", np.ascontiguousarray(v))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    mf.log(f"torch {torch.__version__}, transformers {transformers.__version__}")
    for name, scaling, seed in (("tiny-llama-rope-llama3", LLAMA3, 11),
                                ("tiny-llama-rope-linear", LINEAR, 13)):
        torch.manual_seed(0)
        model = save(make_model(scaling, seed), name)
        prompts = mf.make_prompts(seed + 1, 128, LENGTHS, [(model, None)])
        mf.write_ref(model, name, prompts, with_heads=False)
        rel = rope_changes_logits(model, prompts)
        mf.log(f"{name}: {len(prompts)} prompts, lengths {LENGTHS}; without the scaling the "
               f"logits move by {rel:.3f} of max|logit|")
        if scaling is LLAMA3:
            write_gguf(model, os.path.join(FIX, name + ".gguf"))


if __name__ == "__main__":
    main()
