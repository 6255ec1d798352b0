#!/usr/bin/env python3
"""test_config_keys.py: every key of every config class headpursuit loads is read, refused or
shown not to affect the computation.

The key lists come from transformers itself (tests/fixtures/config_keys/<Class>.json, written by
tests/ref/make_config_keys.py: `Class().to_dict()` of transformers 4.46, generic
PretrainedConfig keys included). Each key of a class needs an entry in that class's table below
(or in GENERIC), one of:
  read(value)     the binary reads it: with the key set to value the output changes, or the
                  load fails with a message (containing `expect` when given: e.g. a shape)
  refused(value)  a value that is not implemented is an error naming the key (or `expect`)
  accepted(value, bad)  read and validated, but no effect on these outputs: value leaves the
                  output bit-identical and the bad value is an error naming the key
  inert(reason)   not read, with the reason it cannot change the forward; shown by running with
                  a changed value: the output must stay bit-identical
  nested(cls)     a sub-config audited with its own class (LlavaNextConfig's text/vision_config)
  pending(reason) another change implements it; reported, not failed (hidden_act: the hidden_act
                  work implements the decoder's activation)
Each (class, place) target runs one tiny fixture model (tests/fixtures) with one key changed in
a copy of its config file. A missing entry, an unexpected outcome or a table entry the class no
longer has (unless marked newer: a key of later transformers) fails the test. To audit a new
architecture: add its class to make_config_keys.py, a table here and a TARGETS row.

Needs only numpy. Exit 0 all pass, 1 any failure, 77 when the binary or fixtures are missing.
HP_BIN overrides the binary (default ./headpursuit).
"""
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
FIX = os.path.join(ROOT, "tests", "fixtures")
KEYS = os.path.join(FIX, "config_keys")
BIN = os.environ.get("HP_BIN", os.path.join(ROOT, "headpursuit"))
TMP = tempfile.mkdtemp(prefix="hp_cfgkeys_")


class E:
    """One expectation for one key."""

    def __init__(self, kind, value=None, reason="", expect=None, bad=None, newer=False):
        self.kind, self.value, self.reason = kind, value, reason
        self.expect, self.bad, self.newer = expect, bad, newer


def read(value, expect=None, newer=False):
    return E("read", value, expect=expect, newer=newer)


def refused(value, expect=None, newer=False):
    return E("refused", value, expect=expect, newer=newer)


def accepted(value, bad="x"):
    return E("accepted", value, bad=bad)


def inert(reason, value=None):
    return E("inert", value, reason)


def nested(cls):
    return E("nested", reason=cls)


def pending(reason, value):
    return E("pending", value, reason)


GEN = "generation setting (transformers' generate() default); the forward never reads it and " \
      "headpursuit decodes greedily"
# PretrainedConfig's keys, shared by every class (a class table overrides).
GENERIC = {
    "_attn_implementation_autoset": inert("transformers bookkeeping (attention backend chosen)", True),
    "_name_or_path": inert("where the checkpoint was loaded from", "elsewhere"),
    "add_cross_attention": inert("no cross-attention in these models", True),
    "architectures": inert("picks the class for AutoModel only", ["CLIPVisionModel"]),
    "bos_token_id": inert("special-token id: the forward never reads it", 7),
    "chunk_size_feed_forward": inert("feed-forward chunking: not used by these models (and exact)", 4),
    "cross_attention_hidden_size": inert("no cross-attention in these models", 8),
    "decoder_start_token_id": inert("encoder-decoder generation only", 3),
    "eos_token_id": inert("special-token id: the forward never reads it", 7),
    "finetuning_task": inert("training metadata", "x"),
    "id2label": inert("classification heads only", {"0": "A"}),
    "is_decoder": inert("encoder-decoder machinery: not used by these models", True),
    "is_encoder_decoder": inert("encoder-decoder machinery: not used by these models", True),
    "label2id": inert("classification heads only", {"A": 0}),
    "output_attentions": inert("what the forward returns, not its values", True),
    "output_hidden_states": inert("what the forward returns, not its values", True),
    "pad_token_id": inert("padding_idx: initialisation and gradients only", 5),
    "prefix": inert("pipeline prompt prefix metadata", "x"),
    "problem_type": inert("classification losses only", "regression"),
    "pruned_heads": refused({"0": [1]}),
    "return_dict": inert("what the forward returns, not its values", False),
    "sep_token_id": inert("special-token id: not read by these models", 4),
    "task_specific_params": inert("pipeline metadata", {"summarization": {}}),
    "tf_legacy_loss": inert("TensorFlow loss only", True),
    "tie_encoder_decoder": inert("encoder-decoder models only", True),
    "tokenizer_class": inert("tokenizer metadata", "LlamaTokenizer"),
    "torch_dtype": inert("dtype transformers loads in with torch_dtype='auto'; the stored "
                         "tensors' dtypes are read, computation is float32 (CPU)", "bfloat16"),
    "torchscript": inert("clones tied weights instead of sharing them: same values", True),
    "use_bfloat16": inert("TensorFlow/Flax only", True),
}
for k, v in {"bad_words_ids": [[5]], "begin_suppress_tokens": [5], "diversity_penalty": 0.5,
             "do_sample": True, "early_stopping": True, "encoder_no_repeat_ngram_size": 2,
             "exponential_decay_length_penalty": [2, 1.5], "forced_bos_token_id": 3,
             "forced_eos_token_id": 3, "length_penalty": 2.0, "max_length": 5, "min_length": 3,
             "no_repeat_ngram_size": 2, "num_beam_groups": 2, "num_beams": 4,
             "num_return_sequences": 2, "output_scores": True, "remove_invalid_values": True,
             "repetition_penalty": 1.3, "return_dict_in_generate": True, "suppress_tokens": [5],
             "temperature": 0.5, "top_k": 3, "top_p": 0.5, "typical_p": 0.5}.items():
    GENERIC[k] = inert(GEN, v)

HIDDEN_ACT = read("gelu")  # silu, gelu, gelu_pytorch_tanh, relu; others refused (test_parity)

# Keys of both decoders (LlamaConfig / MistralConfig and LLaVA's text_config).
DECODER = {
    "architectures": refused(["GPT2LMHeadModel"], expect="GPT2LMHeadModel"),
    "attention_dropout": inert("dropout: training only", 0.3),
    "bos_token_id": accepted(7),
    "eos_token_id": accepted(7),
    "head_dim": read(8, expect="shape"),
    "hidden_act": HIDDEN_ACT,
    "hidden_size": read(16, expect="shape"),
    "initializer_range": inert("initialisation only", 0.5),
    "intermediate_size": read(24, expect="shape"),
    "max_position_embeddings": accepted(200),
    "model_type": refused("gpt2", expect="model_type"),
    "num_attention_heads": read(2, expect="shape"),
    "num_hidden_layers": read(1),
    "num_key_value_heads": read(1, expect="shape"),
    "rms_norm_eps": read(0.1),
    "rope_theta": read(123.0),
    "tie_word_embeddings": read(True),
    "use_cache": inert("KV cache on or off: same logits", False),
    "vocab_size": read(100),  # a shape error, or the tokenizer's size first
    "rope_parameters": read({"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0},
                            newer=True),
}
LLAMA = dict(DECODER, **{
    "attention_bias": read(True, expect="bias"),  # tiny-llama has no bias tensors
    "mlp_bias": read(True, expect="bias"),
    "pretraining_tp": inert("tensor-parallel slicing of the same products (transformers 4.46 "
                            "splits and re-sums them): identical up to summation order", 2),
    "rope_scaling": read({"rope_type": "linear", "factor": 2.0}),
    "tie_word_embeddings": read(False, expect="lm_head"),  # tiny-llama is tied
})
MISTRAL = dict(DECODER, **{
    "sliding_window": read(2),
})
QWEN2 = dict({k: v for k, v in DECODER.items() if k != "head_dim"}, **{  # 4.46: no head_dim key
    "max_window_layers": inert("layers above it use the window, only with use_sliding_window", 1),
    "rope_scaling": read({"rope_type": "linear", "factor": 2.0}),
    "sliding_window": inert("the window applies only with use_sliding_window", 2),
    "tie_word_embeddings": read(False, expect="lm_head"),  # tiny-qwen2 is tied
    "use_sliding_window": refused(True),
})
GEMMA3 = dict({k: v for k, v in DECODER.items() if k != "hidden_act"}, **{  # hidden_activation
    "_sliding_window_pattern": inert("layer_types (saved beside it) decides which layers are "
                                     "sliding; transformers derives it from the pattern only "
                                     "when layer_types is absent", 2),
    "attention_bias": read(True, expect="bias"),
    "attn_logit_softcapping": refused(50.0),
    "final_logit_softcapping": read(4.0),
    "hidden_activation": read("gelu"),
    "layer_types": read(["full_attention"] * 6),
    "query_pre_attn_scalar": read(16),
    "rope_local_base_freq": read(1000.0),
    "rope_scaling": read({"rope_type": "linear", "factor": 2.0}),  # global layers only
    "sliding_window": read(2),
    "tie_word_embeddings": read(False, expect="lm_head"),  # tiny-gemma3 is tied
    "use_bidirectional_attention": refused(True, newer=True),
})
LLAVA_NEXT = {
    "architectures": refused(["LlavaForConditionalGeneration"], expect="architectures"),
    "ignore_index": inert("training loss only", -1),
    "image_grid_pinpoints": read([[32, 64], [64, 32], [64, 64]]),
    "image_seq_length": inert("the 4.46 processor's legacy-prompt test; ids are expanded here "
                              "from the image size", 5),
    "image_token_index": read(271),
    "model_type": refused("llava", expect="model_type"),
    "projector_hidden_act": read("quick_gelu"),
    "text_config": nested("MistralConfig"),
    "tie_word_embeddings": inert("transformers 4.46 ties the language model by "
                                 "text_config.tie_word_embeddings only", True),
    "vision_config": nested("CLIPVisionConfig"),
    "vision_feature_layer": read(-1),
    "vision_feature_select_strategy": read("full"),
    "multimodal_projector_bias": read(False, newer=True),
}
CLIP_VISION = {
    "attention_dropout": inert("dropout: training only", 0.3),
    "hidden_act": read("gelu"),
    "hidden_size": read(16, expect="shape"),
    "image_size": read(16),  # an error: crop_size, pinpoints or the position table
    "initializer_factor": inert("initialisation only", 2.0),
    "initializer_range": inert("initialisation only", 0.5),
    "intermediate_size": read(16, expect="shape"),
    "layer_norm_eps": read(0.1),
    "model_type": refused("siglip_vision_model", expect="model_type"),
    "num_attention_heads": read(8),
    "num_channels": read(1, expect="shape"),
    "num_hidden_layers": read(2),
    "patch_size": read(4, expect="shape"),
    "projection_dim": inert("CLIPVisionModelWithProjection only; LLaVA takes hidden states", 7),
    "tie_word_embeddings": inert("a vision tower has no word embeddings", False),
}
LLAVA_NEXT_PROC = {
    "_processor_class": inert("names the processor class that saved it", "LlavaNextProcessor"),
    "crop_size": read({"height": 32, "width": 32}, expect="crop_size"),
    "do_center_crop": refused(False),
    "do_convert_rgb": refused(False),
    "do_normalize": read(False),
    "do_pad": inert("pads a batch's tile counts; images run one at a time", False),
    "do_rescale": read(False),
    "do_resize": refused(False),
    "image_grid_pinpoints": refused([[24, 48]]),
    "image_mean": read([0.4, 0.5, 0.6]),
    "image_processor_type": refused("CLIPImageProcessor"),
    "image_std": read([0.3, 0.5, 0.7]),
    "resample": refused(2),
    "rescale_factor": read(1 / 255),
    "size": read({"shortest_edge": 28}),
    "processor_class": E("inert", "LlavaNextProcessor", "names the processor class that saved it",
                         newer=True),
}

TABLES = {"LlamaConfig": LLAMA, "MistralConfig": MISTRAL, "Qwen2Config": QWEN2,
          "Gemma3TextConfig": GEMMA3,
          "LlavaNextConfig": LLAVA_NEXT,
          "CLIPVisionConfig": CLIP_VISION, "LlavaNextImageProcessor": LLAVA_NEXT_PROC}
PROCESSORS = {"LlavaNextImageProcessor"}  # not PretrainedConfigs: no GENERIC keys


def llava_cmd(model):
    cases = json.load(open(os.path.join(FIX, model, "ref", "cases.json")))
    wide = next(c for c in cases["cases"] if c["name"] == "wide")
    ids = os.path.join(TMP, model + "_ids.json")
    json.dump(wide["prompt_single"], open(ids, "w"))
    return ["llava-logits", "{dir}", "--device", "cpu", "--ids-file", ids, "--image",
            os.path.join(FIX, model, "ref", "wide.png")]


def text_cmd(model):
    return ["logits", "{dir}", "--device", "cpu", "--ids-file",
            os.path.join(FIX, model, "ref", "prompts.json")]


# (label, class, fixture dir, file, sub-object or None, command builder)
TARGETS = [
    ("LlamaConfig (tiny-llama)", "LlamaConfig", "tiny-llama", "config.json", None, text_cmd),
    ("MistralConfig (tiny-mistral)", "MistralConfig", "tiny-mistral", "config.json", None, text_cmd),
    ("Qwen2Config (tiny-qwen2)", "Qwen2Config", "tiny-qwen2", "config.json", None, text_cmd),
    ("Gemma3TextConfig (tiny-gemma3)", "Gemma3TextConfig", "tiny-gemma3", "config.json", None,
     text_cmd),
    ("LlavaNextConfig (tiny-llava)", "LlavaNextConfig", "tiny-llava", "config.json", None, llava_cmd),
    ("text_config (tiny-llava)", "MistralConfig", "tiny-llava", "config.json", "text_config",
     llava_cmd),
    ("vision_config (tiny-llava)", "CLIPVisionConfig", "tiny-llava", "config.json",
     "vision_config", llava_cmd),
    ("preprocessor_config.json (tiny-llava-proc)", "LlavaNextImageProcessor", "tiny-llava-proc",
     "preprocessor_config.json", None, llava_cmd),
]

RESULTS = {"PASS": 0, "FAIL": 0, "PENDING": 0}


def report(status, name, msg):
    RESULTS[status] += 1
    if status != "PASS" or os.environ.get("HP_VERBOSE"):
        print(f"{status:<8} {name:<58} {msg}", flush=True)


def table_for(cls):
    t = {} if cls in PROCESSORS else dict(GENERIC)
    t.update(TABLES[cls])
    return t


class Runner:
    """A copy of one fixture directory whose config file can be rewritten per run."""

    def __init__(self, model, fname, sub, cmd, tag=""):
        self.src = os.path.join(FIX, model)
        self.dir = os.path.join(TMP, f"{model}-{fname}-{sub}{tag}")
        os.makedirs(self.dir)
        for f in os.listdir(self.src):
            if f != fname and f != "ref":
                os.symlink(os.path.join(self.src, f), os.path.join(self.dir, f))
        self.fname, self.sub = fname, sub
        self.orig = json.load(open(os.path.join(self.src, fname)))
        self.cmd = [a.replace("{dir}", self.dir) for a in cmd(model)]
        self.n = 0

    def run(self, key=None, value=None):
        """(output array or None, error text or None) with key set to value (None: unchanged;
        value DELETE removes it)."""
        cfg = copy.deepcopy(self.orig)
        obj = cfg[self.sub] if self.sub else cfg
        if key is not None:
            obj[key] = value
        json.dump(cfg, open(os.path.join(self.dir, self.fname), "w"))
        self.n += 1
        out = os.path.join(TMP, f"out{self.n}.npy")
        p = subprocess.run([BIN] + self.cmd + ["--out", out, "--quiet"], capture_output=True,
                           text=True, errors="replace", timeout=300)
        if p.returncode != 0:
            lines = (p.stderr or p.stdout).strip().splitlines()
            return None, lines[-1] if lines else f"exit {p.returncode}"
        return np.load(out), None


def same(a, b):
    return a is not None and b is not None and a.shape == b.shape and np.array_equal(a, b)


def check_key(r, base, key, ex):
    """Raises AssertionError with a message unless key behaves as ex says; returns a note."""
    if ex.kind == "nested":
        assert any(t[1] == ex.reason and t[4] == key for t in TARGETS), f"no target audits {key}"
        return f"audited as {ex.reason}"
    out, err = r.run(key, ex.value)
    if ex.kind == "read":
        if err:
            assert ex.expect is None or ex.expect in err, f"error without '{ex.expect}': {err}"
            return f"= {json.dumps(ex.value)}: refused/mismatch: {err}"
        assert ex.expect is None, f"= {json.dumps(ex.value)} ran; expected an error with '{ex.expect}'"
        assert not same(out, base), f"= {json.dumps(ex.value)} left the output unchanged: ignored?"
        d = np.abs(out - base).max() if out.shape == base.shape else float("nan")
        return f"= {json.dumps(ex.value)}: output changes (max diff {d:.3g}, shape {out.shape})"
    if ex.kind == "refused":
        want = ex.expect or key
        assert err, f"= {json.dumps(ex.value)} was accepted"
        assert want in err, f"error does not name '{want}': {err}"
        return f"= {json.dumps(ex.value)}: {err}"
    if ex.kind == "accepted":
        assert not err, f"= {json.dumps(ex.value)} failed: {err}"
        assert same(out, base), f"= {json.dumps(ex.value)} changed the output"
        out, err = r.run(key, ex.bad)
        assert err and key in err, f"bad value {ex.bad!r} not refused by name: {err or 'accepted'}"
        return f"accepted; bad value refused: {err}"
    if ex.kind == "inert":
        assert not err, f"= {json.dumps(ex.value)} failed: {err}"
        assert same(out, base), f"= {json.dumps(ex.value)} changed the output (said inert)"
        return f"unchanged ({ex.reason})"
    if ex.kind == "pending":
        if err or not same(out, base):
            return f"now handled ({err or 'output changes'}): make it read/refused in the table"
        raise LookupError(ex.reason)
    raise AssertionError(f"unknown kind {ex.kind}")


def selftest():
    """The comparisons must bite: an inert claim for a key that changes the output fails, and
    so does a read claim for a key that does not."""
    r = Runner("tiny-mistral", "config.json", None, text_cmd, "-selftest")
    base, err = r.run()
    assert err is None, err
    for key, ex in (("rms_norm_eps", inert("wrong on purpose", 0.1)),
                    ("use_cache", read(False)),
                    ("rope_theta", refused(123.0))):
        try:
            check_key(r, base, key, ex)
        except AssertionError:
            continue
        raise AssertionError(f"a wrong claim about {key} passed")


def main():
    if not os.access(BIN, os.X_OK):
        print(f"skipped: no binary {BIN}")
        return 77
    missing = [t[2] for t in TARGETS if not os.path.isdir(os.path.join(FIX, t[2]))]
    if missing or not os.path.isdir(KEYS):
        print(f"skipped: fixtures missing ({missing or KEYS})")
        return 77
    try:
        selftest()
        report("PASS", "selftest", "wrong claims are caught")
    except AssertionError as e:
        report("FAIL", "selftest", str(e))
    for label, cls, model, fname, sub, cmd in TARGETS:
        listed = json.load(open(os.path.join(KEYS, cls + ".json")))["keys"]
        table = table_for(cls)
        for k in sorted(set(listed) - set(table)):
            report("FAIL", f"{label}: {k}", "key of the class has no entry in the table")
        for k in sorted(set(TABLES[cls]) - set(listed)):
            if not TABLES[cls][k].newer:
                report("FAIL", f"{label}: {k}", "table entry for a key the class does not have")
        r = Runner(model, fname, sub, cmd)
        base, err = r.run()
        if err:
            report("FAIL", f"{label}: baseline", err)
            continue
        kinds = {}
        for k in sorted(set(listed) | {k for k, e in TABLES[cls].items() if e.newer}):
            if k not in table:
                continue
            ex = table[k]
            try:
                note = check_key(r, base, k, ex)
                report("PASS", f"{label}: {k}", f"{ex.kind}: {note}")
                kinds[ex.kind] = kinds.get(ex.kind, 0) + 1
            except LookupError as e:
                report("PENDING", f"{label}: {k}", f"silently ignored for now: {e}")
            except AssertionError as e:
                report("FAIL", f"{label}: {k}", f"{ex.kind}: {e}")
        print(f"{label}: {len(listed)} keys; " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())),
              flush=True)
    shutil.rmtree(TMP, ignore_errors=True)
    print(f"config keys: {RESULTS['PASS']} passed, {RESULTS['FAIL']} failed, "
          f"{RESULTS['PENDING']} pending")
    return 1 if RESULTS["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
