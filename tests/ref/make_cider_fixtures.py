#!/usr/bin/env python3
"""make_cider_fixtures.py: writes tests/fixtures/cider/cider.json, the reference values that
tests/test_cider.c checks host/eval/cider.c against.

Reference: pycocoevalcap 1.2 (the pip package of the coco-caption evaluation code):
  - CIDEr-D from pycocoevalcap.cider.cider_scorer.CiderScorer(n=4, sigma=6.0), fed exactly as
    pycocoevalcap.cider.Cider.compute_score feeds it (one candidate and its references per image,
    in corpus order): per-image scores and their mean;
  - tokenisation from pycocoevalcap.tokenizer.ptbtokenizer.PTBTokenizer (Stanford CoreNLP 3.4.1's
    PTBTokenizer run with java, then the punctuation tokens removed).

Corpora (seeded, written into the fixture as strings, so the fixture never depends on this
script's random draws again):
  flickr_like   40 images x 5 tokenised references of caption-like word sequences sharing
                scenes, two candidate sets scored against the same corpus: identical to a
                reference, empty, one word, repeated words, a paraphrase, another image's
                caption, a long caption, words no reference has
  varied_refs   30 images with 1..7 references each, one of them empty
  two_images    2 images: every n-gram shared by both has weight 0
  single_image  1 image: log(1) = 0 makes every weight and score 0
  raw_captions  25 images of untokenised captions (capitals, punctuation, clitics, brackets,
                numbers, quotes): PTBTokenizer first, then CiderScorer; the C test feeds the raw
                strings to its own tokeniser
plus "tokenizer": [raw, PTBTokenizer output] pairs of caption-like strings, including the
quirks the C tokeniser reproduces (-lrb- kept, "!!" kept, clitics, abbreviations).

PTBTokenizer keeps the first token of its input file in its case; a dummy first caption absorbs
that. Run with the reference venv (tests/ref/setup_ref_env.sh) after
  .venv-ref/bin/python -m pip install --no-deps pycocoevalcap==1.2
(its CIDEr scorer needs only numpy; its tokenizer needs java: apt-get install default-jre-headless):
  .venv-ref/bin/python tests/ref/make_cider_fixtures.py
"""
import json
import os
import random
import sys

try:
    from pycocoevalcap.cider.cider_scorer import CiderScorer
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
except ImportError:
    sys.exit("make_cider_fixtures: needs pycocoevalcap 1.2: .venv-ref/bin/python -m pip install --no-deps "
             "pycocoevalcap==1.2")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "cider", "cider.json")

SUBJ = ["man", "woman", "boy", "girl", "dog", "child", "young man", "old woman", "little girl", "brown dog",
        "group of people", "couple", "biker", "surfer", "football player"]
COLOR = ["red", "blue", "green", "black", "white", "yellow", "orange", "pink", "purple", "gray"]
CLOTH = ["shirt", "jacket", "hat", "dress", "helmet", "coat", "uniform"]
ACT = ["running", "jumping", "sitting", "walking", "riding a bike", "playing", "standing", "climbing a rock",
       "throwing a ball", "smiling"]
PLACE = ["park", "street", "beach", "snow", "grass", "water", "city", "field", "crowd", "stage"]
RARE = ["xylophone", "quasar", "zeppelin", "marzipan", "fjord"]


def scene(rng):
    return dict(s=rng.choice(SUBJ), c=rng.choice(COLOR), w=rng.choice(CLOTH), a=rng.choice(ACT), p=rng.choice(PLACE),
                c2=rng.choice(COLOR))


TEMPLATES = [
    "a {s} in a {c} {w} is {a} in the {p}",
    "a {s} is {a} on the {p}",
    "the {s} wearing a {c} {w} is {a}",
    "a {s} {a} near the {p} while another {s} watches",
    "{s} in {c} {a} in the {p}",
    "a {c} and {c2} {w} on a {s} who is {a}",
    "there is a {s} {a} in the {p} and a {s} {a} too",
    "a {s} {a}",
]


def caption(rng, sc):
    return rng.choice(TEMPLATES).format(**sc)


def cider(cands, refs):
    """pycocoevalcap's Cider.compute_score on tokenised strings, without its dict shuffling."""
    sc = CiderScorer(n=4, sigma=6.0)
    for c, r in zip(cands, refs):
        sc += (c, r)
    mean, per = sc.compute_score()
    return float(mean), [float(x) for x in per]


def ptb(strings):
    """PTBTokenizer output for each string (a dummy first line takes the first-token quirk)."""
    d = {"dummy": [{"caption": "x"}]}
    for i, s in enumerate(strings):
        d[i] = [{"caption": s}]
    out = PTBTokenizer().tokenize(d)
    return [out[i][0] for i in range(len(strings))]


def flickr_like(rng):
    scenes = [scene(rng) for _ in range(40)]
    refs = [[caption(rng, sc) for _ in range(5)] for sc in scenes]
    sets = []
    for variant in range(2):
        cands = []
        for i, sc in enumerate(scenes):
            kind = (i + variant * 3) % 8
            if kind == 0:
                cands.append(refs[i][rng.randrange(5)])
            elif kind == 1:
                cands.append("")
            elif kind == 2:
                cands.append(sc["s"].split()[-1])
            elif kind == 3:
                cands.append(f"a a a {sc['s']} {sc['s']} in the the {sc['p']} {sc['p']}")
            elif kind == 4:
                cands.append(caption(rng, sc))
            elif kind == 5:
                cands.append(refs[(i + 7) % len(refs)][0])
            elif kind == 6:
                cands.append(" ".join(caption(rng, sc) for _ in range(3)))
            else:
                cands.append(f"a {rng.choice(RARE)} {rng.choice(RARE)} {sc['s']} {rng.choice(RARE)}")
        sets.append((f"set{variant}", cands))
    return "flickr_like", False, refs, sets


def varied_refs(rng):
    scenes = [scene(rng) for _ in range(30)]
    refs = [[caption(rng, sc) for _ in range(rng.randint(1, 7))] for sc in scenes]
    refs[5].append("")
    cands = [caption(rng, sc) if i % 3 else refs[i][-1] for i, sc in enumerate(scenes)]
    return "varied_refs", False, refs, [("paraphrases", cands)]


def two_images(rng):
    refs = [["a dog runs in the park", "a brown dog is running", "the dog runs on the grass"],
            ["a man runs in the park", "a man is running in a park", "a man in a red shirt runs"]]
    sets = [("paraphrases", ["a dog is running in the park", "a man runs"]),
            ("swapped", ["a man runs in the park", "a dog runs in the park"])]
    return "two_images", False, refs, sets


def single_image(rng):
    refs = [["a girl in a pink dress is jumping", "a little girl jumps", "a girl jumping on the grass",
             "a child in pink jumps", "a small girl is jumping in a yard"]]
    return "single_image", False, refs, [("identical", ["a little girl jumps"]), ("other", ["two dogs play"])]


RAW_REFS = [
    ["A man in a red shirt is climbing a rock .", "A climber ascends a steep rock wall .",
     "A man 's hands grip the rock as he climbs .", "Rock climber in red .", "A person climbing up a cliff ."],
    ["Two dogs play in the snow .", "A black dog and a white dog are running through snow .",
     "Dogs ( one black , one white ) romp in the snow .", "Two dogs chase each other .", "Dogs playing outside ."],
    ["A woman sells fruit at a market .", "A street vendor with bananas , apples and oranges .",
     "An older woman stands behind a fruit stand .", "Market stall with fresh fruit .",
     "A woman is selling fruits and vegetables ."],
]


def raw_captions(rng):
    refs = [list(r) for r in RAW_REFS]
    cands = ["A man wearing a red shirt is climbing up a rocky cliff, surrounded by trees.",
             "Two dogs, one black and one white, are playing in the snow!",
             "A woman's fruit stand at the market (with bananas & apples)."]
    for _ in range(22):
        sc = scene(rng)
        refs.append([caption(rng, sc).capitalize() + " ." for _ in range(5)])
        s = caption(rng, sc)
        style = rng.randrange(4)
        if style == 0:
            cands.append(f"In this image, {s}.")
        elif style == 1:
            cands.append(f"\"{s.capitalize()}\" -- it's a {sc['c']}-and-{sc['c2']} scene!")
        elif style == 2:
            cands.append(f"The {sc['s']}'s {sc['w']} is {sc['c']}; {s}.")
        else:
            cands.append(f"{s.capitalize()} [{sc['p']}], doesn't it?")
    return "raw_captions", True, refs, [("llava_like", cands)]


TOKENIZER_CASES = [
    "A man's dog, running (fast) on the navy-blue \"grass\".",
    "Two kids don't play with 1,000 balls at 3.5 p.m. -- happily!",
    "A woman in a red/white shirt & jeans; she's 50% sure... $5",
    "A man wearing a t-shirt and a hat.",
    "A DOG JUMPS OVER A LOG.",
    "A man [left] and {right} at 3:30 near st. Mary's church.",
    "Two dogs' toys; Mr. Smith's car? Yes!! It's 10:00 a.m. now.",
    "A boy can't swim, won't try, and they're sure we've seen I'm fine you'll he'd.",
    "\"A dog\" 'a cat' said \"hello.\" #1 fan @ home + 2 = 4",
    "A red-and-white sign reads -- stop -- here - there.",
    "a dog.. runs... fast....",
    "a 5-year-old boy's 2nd birthday, 1.5 million, .5 inch, 1,000,000 , 3 , 4",
    "The U.S. flag. The dog's.",
    "at&t r&b 50% a/b ?! !? ...? wow?? hi!",
    "dogs' -foo foo- -- --- - ---- bar-",
    "what's up? e.g. a dog i.e. a cat; etc. vs. 1.5.2 5.",
    "a man’s dog “quoted” and ‘single’ the end… a – b — c don’t",
    "-5 degrees and 5-6 dogs and +3",
    "Cannot stop, gonna go; wanna play? gotta run.",
    "A man in an orange hat starring at something .",
    "Two young guys with shaggy hair look at their hands while hanging out in the yard .",
    "A little girl covered in paint sits in front of a painted rainbow with her hands in a bowl .",
    "A man 's dog n't 's 're",
    "O'Neil's 90's rock band",
    "  leading and   trailing   spaces  ",
    "The image shows a group of people standing on a beach, looking out at the ocean.",
    "Café in München: Straße",
]


def main():
    rng = random.Random(20261121)
    corpora = []
    raw_pairs = []
    for make in (flickr_like, varied_refs, two_images, single_image, raw_captions):
        name, raw, refs, sets = make(rng)
        entry = {"name": name, "raw": raw, "refs": refs, "candidate_sets": []}
        if raw:  # the references as pycocoevalcap scores them: PTB-tokenised
            flat = [r for rr in refs for r in rr]
            tok = ptb(flat)
            it = iter(tok)
            tok_refs = [[next(it) for _ in rr] for rr in refs]
            raw_pairs += list(zip(flat, tok))
        for set_name, cands in sets:
            tok_cands = ptb(cands) if raw else cands
            if raw:
                raw_pairs += list(zip(cands, tok_cands))
            mean, per = cider(tok_cands, tok_refs if raw else refs)
            entry["candidate_sets"].append({"name": set_name, "candidates": cands, "per_image": per, "score": mean})
            print(f"{name}/{set_name}: {len(refs)} images, CIDEr-D {mean:.6f}")
        corpora.append(entry)
    tok_pairs = [[s, t] for s, t in zip(TOKENIZER_CASES, ptb(TOKENIZER_CASES))] + [list(p) for p in raw_pairs]
    fixture = {
        "generator": "tests/ref/make_cider_fixtures.py",
        "reference": "pycocoevalcap 1.2: cider.cider_scorer.CiderScorer(n=4, sigma=6.0), "
                     "tokenizer.ptbtokenizer.PTBTokenizer (Stanford CoreNLP 3.4.1)",
        "tokenizer": tok_pairs,
        "corpora": corpora,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {len(tok_pairs)} tokenizer pairs)")


if __name__ == "__main__":
    main()
