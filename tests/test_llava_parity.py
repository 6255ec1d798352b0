#!/usr/bin/env python3
"""test_llava_parity.py: the LLaVA-NeXT side of the headpursuit binary against Hugging Face.

tests/fixtures/tiny-llava/ holds a random LlavaNextForConditionalGeneration and, per test image,
the pixel tiles HF's image processor made, the CLIP hidden state the model selects, the packed
image features and (two images) the logits of a prompt (tests/ref/make_llava_fixtures.py). The
binary gets the same pixel tiles, so this is independent of the C image processor:
  llava-features --stage tower    vs ref/<image>.tower.npy      (CLIP, feature layer, CLS dropped)
  llava-features                  vs ref/<image>.features.npy   (projector, anyres packing: the
                                                                 image-token count is its row count)
  llava-logits with ONE image token (expanded by the binary) and with the tokens already
  expanded                        vs ref/<image>.logits.npy
  llava-features --image <image>.png: the same through the C image processor (end to end)
  llava-logits --text T (the llava-v1.6-mistral template, tokenized by the C tokenizer from the
  fixture's tokenizer.json)       vs ref/<image>.text_logits.npy (HF's LlavaNextProcessor ids)
  llava-logits --image <image>.png   vs ref/<image>.logits.npy (the C image processor end to end)
tests/fixtures/tiny-llava-proc/ gets the same checks with an image processor unlike CLIP's
defaults (preprocessor_config.json: mean = std = 0.5, shortest_edge 30 > crop_size 24,
rescale_factor 1/250).
Then the checks are shown to bite: a wrong image size, a wrong image-token count, slightly
perturbed pixels, and tiny-llava-proc without its preprocessor_config.json must each fail.

HP_LLAVA_FULL=DIR adds the same checks at llava-v1.6-mistral's full vision shapes (CLIP-L/336,
made by make_llava_fixtures.py --full DIR, ~1.5 GB, so not in the repository).

Needs only numpy. Exit 0 all pass, 1 any failure, 77 skipped (no fixtures, or a binary without
the llava commands). HP_BIN overrides the binary (default ./headpursuit), HP_FIXTURES the
fixtures directory.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

# Error = max|out - ref| / max|ref|. fp32 against fp32 with 3 CLIP + 2 decoder layers: only the
# order of accumulation differs (measured <= 5e-7 for features, <= 2e-6 for logits); a wrong
# eps, activation or bias moves them by >= 1e-3.
TOL = 1e-4

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
FIX = os.environ.get("HP_FIXTURES", os.path.join(ROOT, "tests", "fixtures"))
TINY = os.path.join(FIX, "tiny-llava")
TINY_PROC = os.path.join(FIX, "tiny-llava-proc")
FULL = os.environ.get("HP_LLAVA_FULL")
MODEL = REF = None  # the model directory under test and its ref/ (set per model in main)
BIN = os.environ.get("HP_BIN", os.path.join(ROOT, "headpursuit"))
TMP = tempfile.mkdtemp(prefix="hp_llava_")
RESULTS = {"PASS": 0, "FAIL": 0}


class Fail(Exception):
    pass


def check(name, fn, *args):
    """Runs one comparison and prints one line; any exception is a failure."""
    try:
        msg, status = fn(*args), "PASS"
    except Fail as e:
        msg, status = str(e), "FAIL"
    except Exception as e:  # a crash in the test or unreadable output is a failure too
        msg, status = f"{type(e).__name__}: {e}", "FAIL"
    RESULTS[status] += 1
    print(f"{status}  {name:<40} {msg}", flush=True)


def run(args, expect_ok=True):
    cmd = [BIN] + [str(a) for a in args] + ["--quiet"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if expect_ok and p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        raise Fail(f"exit {p.returncode}: {' '.join(cmd)}\n      " + "\n      ".join(tail))
    return p


def run_npy(args, name):
    out = os.path.join(TMP, name)
    if os.path.exists(out):  # a stale file cannot pass
        os.remove(out)
    run(list(args) + ["--out", out])
    if not os.path.exists(out):
        raise Fail(f"{out} not written")
    a = np.load(out)
    if a.dtype != np.float32:
        raise Fail(f"{name}: dtype {a.dtype}, expected float32")
    return a


def compare(out, ref, what):
    """Raises Fail unless shapes match, everything is finite and the error is within TOL."""
    if out.shape != ref.shape:
        raise Fail(f"{what}: shape {out.shape}, reference {ref.shape}")
    if not np.isfinite(out).all():
        raise Fail(f"{what}: non-finite values")
    d = np.abs(out.astype(np.float64) - ref.astype(np.float64))
    i = np.unravel_index(np.argmax(d), d.shape)
    err = float(d[i] / max(np.abs(ref).max(), 1e-30))
    if not err <= TOL:
        raise Fail(f"{what}: max rel err {err:.2e} at {tuple(int(x) for x in i)} > {TOL:g}")
    return f"{what} {out.shape} max rel err {err:.1e}"


def pixel_args(case, pixels=None):
    return ["--pixels", pixels or os.path.join(REF, f"{case['name']}.pixels.npy"),
            "--image-size", f"{case['height']},{case['width']}"]


def ids_file(ids, name):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        json.dump(ids, f)
    return path


def check_tower(case):
    out = run_npy(["llava-features", MODEL, "--stage", "tower"] + pixel_args(case), "tower.npy")
    return compare(out, np.load(os.path.join(REF, f"{case['name']}.tower.npy")), "tower")


def check_features(case):
    out = run_npy(["llava-features", MODEL] + pixel_args(case), "features.npy")
    if out.shape[0] != case["n_image_tokens"]:
        raise Fail(f"{out.shape[0]} image tokens, HF {case['n_image_tokens']}")
    msg = compare(out, np.load(os.path.join(REF, f"{case['name']}.features.npy")), "features")
    return f"{case['n_image_tokens']} tokens, {msg}"


def check_image_file(case):
    out = run_npy(["llava-features", MODEL, "--image", os.path.join(REF, f"{case['name']}.png")],
                  "features_png.npy")
    return compare(out, np.load(os.path.join(REF, f"{case['name']}.features.npy")), "features")


def check_logits(case, ids, label):
    out = run_npy(["llava-logits", MODEL, "--device", "cpu", "--ids-file", ids_file(ids, "ids.json")]
                  + pixel_args(case), "logits.npy")
    return label + ", " + compare(out, np.load(os.path.join(REF, f"{case['name']}.logits.npy")), "logits")


def check_image_logits(case, ids):
    out = run_npy(["llava-logits", MODEL, "--device", "cpu", "--ids-file", ids_file(ids, "ids.json"),
                   "--image", os.path.join(REF, f"{case['name']}.png")], "logits_png.npy")
    return compare(out, np.load(os.path.join(REF, f"{case['name']}.logits.npy")), "logits")


def check_text(case):
    out = run_npy(["llava-logits", MODEL, "--device", "cpu", "--text", case["text"]] + pixel_args(case),
                  "text_logits.npy")
    ref = np.load(os.path.join(REF, f"{case['name']}.text_logits.npy"))
    if out.shape[0] != len(case["text_ids"]):
        raise Fail(f"{out.shape[0]} positions, HF's processor gave {len(case['text_ids'])} ids")
    return f"{case['text']!r}: " + compare(out, ref, "logits")


# ---- the checks must bite ----

def must_fail(fn, *args):
    try:
        fn(*args)
    except Fail as e:
        return "rejected as it should: " + str(e).splitlines()[0]
    raise Fail("a broken input passed")


def broken_size(case):
    """The tall image's tiles with the square's size: same 2x2 grid, other unpadding."""
    return must_fail(check_features, dict(case, height=64, width=64))


def broken_pixels(case):
    pix = np.load(os.path.join(REF, f"{case['name']}.pixels.npy"))
    pix[-1, 1, 5, 7] += 0.05  # one value of the last grid tile
    path = os.path.join(TMP, "perturbed.npy")
    np.save(path, pix)
    return must_fail(lambda: compare(run_npy(["llava-features", MODEL] + pixel_args(case, path),
                                             "features.npy"),
                                     np.load(os.path.join(REF, f"{case['name']}.features.npy")),
                                     "features"))


def broken_processor(case):
    """tiny-llava-proc without its preprocessor_config.json: CLIP's defaults must not match."""
    d = os.path.join(TMP, "no-preprocessor")
    os.makedirs(d, exist_ok=True)
    for f in ("config.json", "model.safetensors"):
        if not os.path.exists(os.path.join(d, f)):
            os.symlink(os.path.join(TINY_PROC, f), os.path.join(d, f))
    png = os.path.join(TINY_PROC, "ref", f"{case['name']}.png")
    ref = np.load(os.path.join(TINY_PROC, "ref", f"{case['name']}.features.npy"))
    return must_fail(lambda: compare(run_npy(["llava-features", d, "--image", png], "f.npy"), ref,
                                     "features"))


def broken_ids(case, tok):
    """Two image tokens are neither one (to expand) nor one per feature: an error, not a guess."""
    ids = case["prompt_single"][:2] + [tok] + case["prompt_single"][2:]
    p = run(["llava-logits", MODEL, "--device", "cpu", "--ids-file", ids_file(ids, "bad.json"),
             "--out", os.path.join(TMP, "bad.npy")] + pixel_args(case), expect_ok=False)
    if p.returncode == 0:
        raise Fail("two image tokens were accepted")
    return "rejected: " + p.stderr.strip().splitlines()[-1]


def main():
    global MODEL, REF
    if not os.path.exists(os.path.join(TINY, "ref", "cases.json")):
        print(f"skipped: no fixtures in {TINY} (tests/ref/make_llava_fixtures.py)")
        return 77
    if not os.access(BIN, os.X_OK):
        print(f"skipped: no binary {BIN}")
        return 77
    usage = subprocess.run([BIN, "--help"], capture_output=True, text=True).stdout
    if "llava-features" not in usage or "llava-logits" not in usage:
        print(f"skipped: {BIN} has no llava-features / llava-logits command")
        return 77
    models = [TINY] + ([TINY_PROC] if os.path.isdir(TINY_PROC) else []) + \
        ([os.path.abspath(FULL)] if FULL else [])
    for MODEL in models:
        REF = os.path.join(MODEL, "ref")
        meta = json.load(open(os.path.join(REF, "cases.json")))
        if MODEL != TINY:
            print(f"{os.path.basename(MODEL)}: {MODEL}", flush=True)
        run_cases(meta)
    MODEL, REF = TINY, os.path.join(TINY, "ref")
    meta = json.load(open(os.path.join(REF, "cases.json")))
    cases = {c["name"]: c for c in meta["cases"]}
    check("wrong image size fails", broken_size, cases["tall"])
    check("perturbed pixels fail", broken_pixels, cases["square"])
    check("two image tokens rejected", broken_ids, cases["small"], meta["image_token"])
    if os.path.isdir(TINY_PROC):
        check("tiny-llava-proc without its processor", broken_processor,
              json.load(open(os.path.join(TINY_PROC, "ref", "cases.json")))["cases"][0])
    print(f"llava parity: {RESULTS['PASS']} passed, {RESULTS['FAIL']} failed")
    return 1 if RESULTS["FAIL"] else 0


def run_cases(meta):
    for c in meta["cases"]:
        check(f"{c['name']} {c['height']}x{c['width']} tower", check_tower, c)
        check(f"{c['name']} {c['height']}x{c['width']} features", check_features, c)
        check(f"{c['name']} .png -> features", check_image_file, c)
        if c.get("logits"):
            check(f"{c['name']} logits (one image token)", check_logits, c, c["prompt_single"],
                  "1 token expanded")
            check(f"{c['name']} logits (expanded ids)", check_logits, c, [c["prompt_expanded"]],
                  f"{c['n_image_tokens']} tokens given")
            check(f"{c['name']} .png -> logits", check_image_logits, c, c["prompt_single"])
        if c.get("text"):
            check(f"{c['name']} logits (--text, template)", check_text, c)


if __name__ == "__main__":
    sys.exit(main())
