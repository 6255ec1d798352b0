#!/usr/bin/env python3
"""Head Pursuit mechanics through the CLI (numpy only; exit 0 pass, 1 fail, 77 all skipped).

Edits on the tiny Llama fixture:
  - alpha = 1 on any head gives bit-identical logits;
  - alpha = 0 equals the checkpoint with that head's W_O columns zeroed (edited independently
    here by rewriting the safetensors file);
  - the readout of `capture` sums to the attention output projection: sum over heads of a
    token's contributions equals o_proj(z) (checked through alpha = 0 on all heads of a layer).
Over-long prompts (a 1 MB question in a JSONL set, long --text / --ids) are refused before any
forward, naming the file and record, the token count and the cap (the model's context or
--max-prompt-tokens).
The rank -> eval pipeline on the real SmolLM2 (a few samples): outputs exist and are consistent,
representations are reused only when model/data/options match, random controls keep the
per-layer counts of the SOMP heads and never overlap them.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("HP_BIN", "./headpursuit")
TINY = os.path.join("tests", "fixtures", "tiny-llama")
GGUF = os.path.join("models", "SmolLM2-135M-Instruct.Q4_1.gguf")
counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}


def run(*args, ok=True):
    p = subprocess.run([BIN, *args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {p.returncode}: {p.stderr.strip()[-400:]}")
    return p


def check(name, fn):
    try:
        msg = fn()
        counts["PASS"] += 1
        print(f"PASS  {name:44s} {msg or ''}")
    except SkipTest as s:
        counts["SKIP"] += 1
        print(f"SKIP  {name:44s} skipped: {s}")
    except Exception as ex:  # any exception is a failure
        counts["FAIL"] += 1
        print(f"FAIL  {name:44s} {ex}")


class SkipTest(Exception):
    pass


def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return b, n, json.loads(b[8:8 + n])


def logits(model, tmp, *extra):
    out = os.path.join(tmp, f"l{len(os.listdir(tmp))}.npy")
    run("logits", model, "--ids-file", os.path.join(TINY, "ref", "prompts.json"), "--out", out, "--quiet", *extra)
    return np.load(out)


def test_alpha_one(tmp):
    a = logits(TINY, tmp)
    b = logits(TINY, tmp, "--heads", "0.1,1.5", "--alpha", "1")
    if a.tobytes() != b.tobytes():
        raise AssertionError("alpha = 1 changed the logits")
    return "bit-identical"


def test_alpha_zero(tmp):
    cfg = json.load(open(os.path.join(TINY, "config.json")))
    dh = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    layer, head = 1, 4
    d = os.path.join(tmp, "zeroed")
    shutil.copytree(TINY, d)
    path = os.path.join(d, "model.safetensors")
    b, n, hdr = read_st(path)
    t = hdr[f"model.layers.{layer}.self_attn.o_proj.weight"]
    assert t["dtype"] == "F32"
    s, e = t["data_offsets"]
    w = np.frombuffer(b[8 + n + s:8 + n + e], dtype="<f4").reshape(t["shape"]).copy()
    w[:, head * dh:(head + 1) * dh] = 0
    b = bytearray(b)
    b[8 + n + s:8 + n + e] = w.tobytes()
    open(path, "wb").write(b)
    ref = logits(d, tmp)
    out = logits(TINY, tmp, "--heads", f"{layer}.{head}", "--alpha", "0")
    err = np.abs(out - ref).max() / np.abs(ref).max()
    if not err <= 1e-6:
        raise AssertionError(f"alpha = 0 vs zeroed W_O slice: rel err {err:.3g} > 1e-6")
    base = logits(TINY, tmp)
    if np.abs(base - ref).max() == 0:
        raise AssertionError("zeroing the slice changed nothing: the test would not see a bug")
    return f"rel err {err:.2g}"


def test_memory_split(tmp):
    """A KV cache that does not fit splits the batch (same continuations); nothing fitting is a
    clear error. HP_CPU_MEM_LIMIT_KB plays the part of a GPU's free memory."""
    args = ["generate", "tests/fixtures/tiny-mistral", "--ids-file",
            os.path.join("tests", "fixtures", "tiny-mistral", "ref", "prompts.json"), "--max-new", "8",
            "--no-eos", "--json", "--quiet"]
    full = run(*args).stdout
    env = dict(os.environ, HP_CPU_MEM_LIMIT_KB="40")
    p = subprocess.run([BIN, *args], capture_output=True, text=True, env=env)
    if p.returncode != 0 or p.stdout != full:
        raise AssertionError(f"split batch differs or failed: rc {p.returncode} {p.stderr.strip()[-200:]}")
    env["HP_CPU_MEM_LIMIT_KB"] = "1"
    p = subprocess.run([BIN, *args], capture_output=True, text=True, env=env)
    if p.returncode != 1 or "headpursuit: out of memory" not in p.stderr or "free()" in p.stderr:
        raise AssertionError(f"1 KB of memory did not fail cleanly: rc {p.returncode}, {p.stderr.strip()[-200:]}")
    return "split batch identical; OOM message: " + p.stderr.strip().splitlines()[-1][:80]


def refused(p, *want):
    """p exited 1 with one 'headpursuit:' message holding every string of want."""
    if p.returncode != 1:
        raise AssertionError(f"exit {p.returncode}, want 1: {p.stderr.strip()[-300:]}")
    msg = [l for l in p.stderr.splitlines() if l.startswith("headpursuit:")]
    if len(msg) != 1 or not all(w in msg[0] for w in want):
        raise AssertionError(f"message {msg} lacks {want}")
    return msg[0]


def test_prompt_cap(tmp):
    """The tiny Llama with the tiny LLaVA's byte-level tokenizer (275 ids < V 300): its QA prompts
    are ~160 tokens. Context 256 (config edited; the RoPE default makes it inert) admits them and
    refuses a 1 MB question; --max-prompt-tokens lowers or raises the cap."""
    d = os.path.join(tmp, "capmodel")
    os.makedirs(d)
    for f in ("config.json", "model.safetensors"):
        shutil.copy(os.path.join(TINY, f), d)
    shutil.copy(os.path.join("tests", "fixtures", "tiny-llava", "tokenizer.json"), d)
    cfg = json.load(open(os.path.join(d, "config.json")))
    cfg["max_position_embeddings"] = 256
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
    data = os.path.join(tmp, "cap.jsonl")
    rec = lambda i, q: json.dumps({"id": i, "question": q, "answers": ["Paris"], "kind": "country"})
    with open(data, "w") as f:
        f.write(rec("q1", "What is the capital of France?") + "\n\n")  # line 2 blank
        f.write(rec("huge", "Is it " + "France or Spain? " * 60000) + "\n")  # line 3, ~1 MB
    words = os.path.join(tmp, "cap_words.txt")
    open(words, "w").write("France\nSpain\n")
    rk = os.path.join(tmp, "cap_rank.json")
    rank = ["rank", d, "--data", data, "--concept", words, "-k", "2", "--out", rk, "--device", "cpu"]
    msg = refused(subprocess.run([BIN, *rank], capture_output=True, text=True),
                  f"{data}:3: record id 'huge'", "over the cap of 256")
    n = int(msg.split("the prompt is ")[1].split()[0])
    assert n > 900000, msg
    assert not os.path.exists(rk), "a ranking was written although the data was refused"
    refused(subprocess.run([BIN, *rank, "--max-prompt-tokens", "100"], capture_output=True, text=True),
            f"{data}:1: record id 'q1'", "over the cap of 100")
    refused(subprocess.run([BIN, "heads", d, "--data", data, "-k", "2", "--device", "cpu"], capture_output=True,
                           text=True), f"{data}:3: record id 'huge'", "cap of 256")
    refused(subprocess.run([BIN, "eval", d, "--task", "qa", "--data", data, "--out-dir", os.path.join(tmp, "cap_ev"),
                            "--device", "cpu", "--max-new", "2"], capture_output=True, text=True),
            f"{data}:3: record id 'huge'", "cap of 256")
    # Without the huge record, rank runs (the cap admits the ~160-token prompt) ...
    small = os.path.join(tmp, "cap_small.jsonl")
    open(small, "w").write(rec("q1", "What is the capital of France?") + "\n")
    run(*[a if a != data else small for a in rank])
    assert os.path.exists(rk)
    # ... and --max-prompt-tokens above the context length is the user's call.
    run("logits", d, "--ids", ",".join(["5"] * 300), "--max-prompt-tokens", "300", "--out",
        os.path.join(tmp, "cap.npy"), "--quiet")
    # The other commands name the option or the ids-file entry.
    refused(run("logits", d, "--ids", ",".join(["5"] * 257), "--out", os.path.join(tmp, "cap.npy"), ok=False),
            "--ids: the prompt is 257 tokens", "cap of 256")
    refused(run("generate", d, "--prompt", "Paris " * 100, "--max-new", "2", ok=False), "--prompt:", "cap of 256")
    refused(run("capture", d, "--text", "x" * 300, "--out", os.path.join(tmp, "cap_h.npy"), ok=False),
            "--text:", "cap of 256")
    ids = os.path.join(tmp, "cap_ids.json")
    json.dump([[1, 2, 3], [4] * 40], open(ids, "w"))
    refused(run("capture", d, "--ids-file", ids, "--max-prompt-tokens", "20", "--out",
                os.path.join(tmp, "cap_h.npy"), ok=False), f"{ids}: entry 1: the prompt is 40 tokens", "cap of 20")
    # TriviaQA JSON has no lines: its records are named by their index in "Data".
    trivia = os.path.join(tmp, "cap_trivia.json")
    json.dump({"Data": [{"Question": "Capital of Chad?", "QuestionId": "tc_1", "Answer": {"Value": "N'Djamena"}},
                        {"Question": "Why? " * 2000, "QuestionId": "tc_2", "Answer": {"Value": "x"}}]},
              open(trivia, "w"))
    refused(subprocess.run([BIN, "heads", d, "--data", trivia, "-k", "2", "--device", "cpu"], capture_output=True,
                           text=True), f"{trivia}: record 1, id 'tc_2'", "cap of 256")
    # A GGUF's cap is its context_length (256 in this fixture).
    gguf = os.path.join("tests", "fixtures", "tiny-llama-rope-llama3.gguf")
    refused(run("logits", gguf, "--ids", ",".join(["5"] * 257), "--out", os.path.join(tmp, "cap.npy"), ok=False),
            "--ids: the prompt is 257 tokens", "cap of 256")
    p = run("logits", d, "--ids", "1,2", "--max-prompt-tokens", "0", "--out", os.path.join(tmp, "cap.npy"), ok=False)
    assert p.returncode == 2 and "--max-prompt-tokens '0': expected an integer >= 1" in p.stderr, p.stderr
    # No context length in the config: no cap from the model.
    del cfg["max_position_embeddings"]
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
    run("logits", d, "--ids", ",".join(["5"] * 300), "--out", os.path.join(tmp, "cap.npy"), "--quiet")
    return msg[msg.index("record id"):][:100]


def test_pipeline(tmp):
    if not os.path.exists(GGUF):
        raise SkipTest(f"{GGUF} not found (run scripts/fetch_smollm2.sh)")
    qa = os.path.join(tmp, "qa")
    subprocess.run([sys.executable, "scripts/build_qa.py", "--out-dir", qa], check=True, capture_output=True)
    reps = os.path.join(tmp, "reps.safetensors")
    rk = os.path.join(tmp, "rank.json")
    args = ["rank", GGUF, "--data", os.path.join(qa, "train.jsonl"), "--concept", os.path.join(qa, "countries.txt"),
            "-k", "5", "--limit", "12", "--reps", reps, "--out", rk, "--device", "cpu"]
    p1 = run(*args)
    r = json.load(open(rk))
    L, H = r["layers"], r["heads_per_layer"]
    assert (L, H) == (30, 9) and len(r["heads"]) == L * H and r["samples"] == 12
    evr = [h["somp_evr"] for h in r["heads"]]
    assert all(0 <= x <= 1 + 1e-9 for x in evr) and evr == sorted(evr, reverse=True), "EVR order"
    assert sorted(map(tuple, r["somp_order"])) == sorted(map(tuple, r["ll_order"])), "orders cover the same heads"
    for f in (rk[:-5] + ".csv", rk[:-5] + ".heatmap.svg"):
        assert os.path.getsize(f) > 0, f
    # Words sharing a first token: one summary line on stderr, the pairs in a file beside the ranking.
    shared = rk[:-5] + ".shared_tokens.txt"
    pairs = [x for x in open(shared) if not x.startswith("#")]
    assert pairs and all("share the first token" in x for x in pairs), shared
    assert "share the first token" not in p1.stderr and "listed in " + shared in p1.stderr, "shared-token summary"
    p2 = run(*args)
    assert "reusing head representations" in p2.stderr, "second run did not reuse the representations"
    assert json.load(open(rk))["heads"] == r["heads"], "reused representations gave another ranking"
    p3 = run(*[a if a != "12" else "10" for a in args])
    assert "reusing head representations" not in p3.stderr, "representations reused although --limit changed"
    assert "hash differs" in p3.stderr, "no reason given for recomputing"
    # A capture batch whose KV cache does not fit is halved (4 -> 2 here), same representations.
    # On --weights-f32: with GGUF weights kept in their block type, a forward call of fewer than
    # 16 tokens takes 16-bit activations (kernels/matmul_q.c, ~3e-5 off float32), so the halved
    # batch would differ by more than summation order.
    small = [a if a != "12" else "4" for a in args] + ["--batch", "4", "--weights-f32"]
    small[small.index(reps)] = reps + ".a"
    run(*small)
    env = dict(os.environ, HP_CPU_MEM_LIMIT_KB="7000")
    small[small.index(reps + ".a")] = reps + ".b"
    p4 = subprocess.run([BIN, *small], capture_output=True, text=True, env=env)
    assert p4.returncode == 0, p4.stderr[-300:]
    assert "trying 2" in p4.stderr, "the capture batch was not halved"
    ra, rb = read_st(reps + ".a"), read_st(reps + ".b")
    ha = np.frombuffer(ra[0][8 + ra[1]:], dtype="<f4")
    hb = np.frombuffer(rb[0][8 + rb[1]:], dtype="<f4")
    err = np.abs(ha - hb).max() / np.abs(ha).max()
    assert err <= 1e-5, f"halved capture differs: rel err {err:.3g}"
    run(*args)  # back to the 12-sample ranking for eval
    ev = os.path.join(tmp, "eval")
    run("eval", GGUF, "--task", "qa", "--data", os.path.join(qa, "test.jsonl"), "--edit", rk, "--top", "2,4",
        "--random", "3", "--seed", "7", "--limit", "6", "--max-new", "4", "--out-dir", ev, "--device", "cpu", "--quiet")
    e = json.load(open(os.path.join(ev, "eval.json")))
    somp = {row["k"]: row["heads"] for row in e["results"] if row["method"] == "somp"}
    for row in e["results"]:
        if row["method"] != "random":
            continue
        rnd = [tuple(map(int, x.split("."))) for x in row["heads"].split(",")]
        sel = [tuple(map(int, x.split("."))) for x in somp[row["k"]].split(",")]
        assert not set(rnd) & set(sel), f"random draw overlaps the SOMP heads: {rnd} {sel}"
        assert sorted(l for l, _ in rnd) == sorted(l for l, _ in sel), "per-layer counts differ"
        assert len(set(rnd)) == len(rnd)
    assert len([x for x in e["results"] if x["method"] == "random"]) == 2 * 3
    assert len(e["summary"]) == 2 * 2 * 2  # metric x k x kind
    for f in ("eval.csv", "f1_vs_k.svg", "match_vs_k.svg", "heads_heatmap.svg"):
        assert os.path.getsize(os.path.join(ev, f)) > 0, f
    top = {tuple(x) for x in r["somp_order"][:2]}
    got = {tuple(map(int, x.split("."))) for x in somp[2].split(",")}
    assert top == got, f"eval edited {got}, ranking's top 2 are {top}"

    # Resume: every finished configuration is in DIR/runs/; a re-run reuses them all, a lost one
    # is recomputed to the same scores, and other settings (--max-new) reuse nothing.
    eargs = ["eval", GGUF, "--task", "qa", "--data", os.path.join(qa, "test.jsonl"), "--edit", rk, "--top", "2,4",
             "--random", "3", "--seed", "7", "--limit", "6", "--out-dir", ev, "--device", "cpu"]
    runs = sorted(os.listdir(os.path.join(ev, "runs")))
    assert len(runs) == 1 + 2 * (2 + 3), runs
    os.remove(os.path.join(ev, "runs", runs[-1]))
    p = subprocess.run([BIN, *eargs, "--max-new", "4"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-300:]
    assert p.stderr.count("resumed from") == len(runs) - 1, p.stderr[-600:]
    e2 = json.load(open(os.path.join(ev, "eval.json")))
    assert e2["results"] == e["results"] and e2["unedited"] == e["unedited"], "resumed eval differs"
    p = subprocess.run([BIN, *eargs, "--max-new", "3", "--random", "0", "--top", "2"], capture_output=True, text=True)
    assert p.returncode == 0 and "resumed from" not in p.stderr, p.stderr[-600:]
    # The kept unedited prefill (default) against recomputing it in every configuration: the
    # same scores and answers.
    nd = os.path.join(tmp, "noprefix")
    p = subprocess.run([BIN, *[a if a != ev else nd for a in eargs], "--max-new", "4", "--no-prefix-reuse"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-300:]
    e3 = json.load(open(os.path.join(nd, "eval.json")))
    assert e3["results"] == e["results"] and e3["unedited_answers"] == e["unedited_answers"], "prefix reuse changed results"
    # Without --edit: the unedited model only, the same scores as eval's unedited run.
    bd = os.path.join(tmp, "base")
    run("eval", GGUF, "--task", "qa", "--data", os.path.join(qa, "test.jsonl"), "--limit", "6", "--max-new", "4",
        "--out-dir", bd, "--device", "cpu", "--quiet")
    b = json.load(open(os.path.join(bd, "baseline.json")))
    assert b["unedited"] == e["unedited"], (b["unedited"], e["unedited"])
    assert [a["answer"] for a in b["unedited_answers"]] == [a["answer"] for a in e["unedited_answers"]]
    return f"rank x3 (reuse checked) + eval, {len(e['results'])} edited runs; resume, prefix reuse, baseline-only"


def main():
    os.chdir(ROOT)
    print(f"pursuit: binary {BIN}")
    with tempfile.TemporaryDirectory() as tmp:
        check("alpha = 1 is bit-identical", lambda: test_alpha_one(tmp))
        check("alpha = 0 equals zeroed W_O slice", lambda: test_alpha_zero(tmp))
        check("KV cache too big: batch split, OOM error", lambda: test_memory_split(tmp))
        check("over-long prompts refused, record named", lambda: test_prompt_cap(tmp))
        check("rank -> eval pipeline (SmolLM2)", lambda: test_pipeline(tmp))
    print(f"pursuit: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
    if counts["FAIL"]:
        return 1
    return 77 if counts["PASS"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
