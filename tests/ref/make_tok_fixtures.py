#!/usr/bin/env python3
"""make_tok_fixtures.py: writes the tokenizer fixtures under tests/fixtures/tok/ that
tests/test_tokenizer.c checks weights/tokenizer*.c against. The reference is Hugging Face
`tokenizers` (and `transformers`' GGUF tokenizer conversion for the GGUF cases). The small
vocabularies are learned by train_bpe() below, a plain deterministic BPE trainer (HF's
BpeTrainer breaks ties by hash order, so its output, and every fixture, would change per run);
rerunning the script reproduces the committed files byte for byte.

Environment (git-ignored venv; tests never need it):
    python3 -m venv .venv-tok
    .venv-tok/bin/pip install tokenizers==0.23.3 transformers==5.23.0 gguf==0.19.0 numpy sentencepiece protobuf
    .venv-tok/bin/python tests/ref/make_tok_fixtures.py

What it writes (each tokenizer in its own directory, beside a tokenizer_config.json that names
its BOS/EOS the way a Hugging Face checkpoint does):
  corpus.txt                the test texts, one per line (the cases are in the expected files)
  spm_legacy/               SentencePiece-style BPE: Prepend+Replace normalizer, "a b" merges,
                            Replace/ByteFallback/Fuse/Strip decoder (older Llama-2/Mistral files)
  spm_metaspace/            the same model with Metaspace(prepend_scheme="first", split=False)
                            pre-tokenizer and [a, b] merges (newer files)
  spm_metaspace_split/      Metaspace(prepend_scheme="always", split=True) + Metaspace decoder
  bl_llama3/                byte-level BPE, Split(Llama-3 regex) + ByteLevel(use_regex=False),
                            ignore_merges, BOS template
  bl_gpt2/                  byte-level BPE, ByteLevel(add_prefix_space=True, use_regex=True)
  smollm2/                  SmolLM2-135M-Instruct's tokenizer, exported from its GGUF (only when
                            models/SmolLM2-135M-Instruct.Q4_1.gguf exists), see smollm2_fixture()
  variants/<name>.json      tiny tokenizers covering the other supported components (also the
                            fuzz seeds in tests/fuzz/seeds/tokenizer/), see variants_and_seeds()
  gguf/spm.gguf, gguf/bl_gpt2.gguf  GGUF files holding only tokenizer metadata (and one 1-element tensor),
                            made from spm_metaspace and bl_gpt2, for hp_tok_from_gguf
  expected_<name>.json      vocabulary facts (id space, BOS/EOS, special ids, a sample of
                            id_to_token) and per case: the text ("text", or "text_hex" for invalid
                            UTF-8 and NUL), ids with and without special tokens, and decode() with
                            and without skip_special_tokens ("decoded"/"decoded_skip", or _hex)

Invalid UTF-8: HF only takes valid str. The C encoder replaces each maximal invalid subsequence
with U+FFFD, which is what Python's bytes.decode("utf-8", "replace") does, so the reference ids
for such cases are HF's ids for that decoded string.
"""
import ast
import codecs
import importlib.util
import json
import os
import struct
import sys
import types

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers import processors

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "tok")
SMOL_GGUF = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# One test text per entry. Escapes keep the exotic characters visible in review.
CORPUS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "Vienna is the capital of Austria; Paris is the capital of France.",
    "I'm sure they'll say it's fine, don't you think? We've seen it, I'd say.",
    "HELLO World hello WORLD",
    "Café naïve résumé façade Ångström",
    "Größe, Straße, Übermäßig: ß and ü and ö",
    "e\u0301 (combining acute) vs \u00e9 (precomposed)",
    "你好，世界！这是一个测试。",
    "日本語のテキストとカタカナ、ひらがな。",
    "مرحبا بالعالم",
    "Привет, мир! Как дела?",
    "Ελληνικά γράμματα",
    "한국어 텍스트입니다",
    "Numbers: 1234567 and 3.14 and 1,000,000 and 0.5%",
    "Year 2024, phone +1-555-0100, version v1.2.3",
    "  two leading spaces",
    "trailing spaces   ",
    "   ",
    " ",
    "",
    "multiple   internal    spaces",
    "tabs\tbetween\twords",
    "\tleading tab",
    "line one\nline two",
    "para one\n\npara two after a blank line",
    "\n\nleading newlines",
    "trailing newline\n",
    "windows\r\nline end",
    "mixed \t \n whitespace \n\t ",
    "emoji 👍 and 👍🏽 skin tone",
    "flags 🇫🇷🇩🇪 and family 👨\u200d👩\u200d👧\u200d👦 ZWJ",
    "hearts ❤️ ❤ and symbols ™ © ® € £ ¥",
    "def foo(x):\n    return x ** 2  # square",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "if (a != b && c >= d || !e) { return -1; }",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "https://example.com/path?q=1&r=two#frag",
    "user@example.org wrote: <b>bold</b>",
    "<s>",
    "<s>Hello</s>",
    "[INST] What is the capital of Austria? [/INST]",
    "[INST]no spaces[/INST]answer",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|><|im_end|>",
    "<|endoftext|>",
    "text <|begin_of_text|> inside",
    "<unk> and <pad> and <mask> tokens",
    "a <mask>b and a<mask> b",
    "word<sep>word and <sep> alone",
    "<s> <s>  <s>",
    "[INST][INST]",
    "zero\u200bwidth and no\u00a0break and ideographic\u3000space",
    "the the the the the the the the",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "....!!!???---___***",
    "'s 't 're 've 'm 'll 'd 'S 'T 'RE",
    "It'S DON'T they'Re",
    "a1b2c3 x²y³ ½ ⅓ ٣٤٥",
    "Mixed: English, français, Deutsch, 中文, русский, العربية, 日本語.",
    "\u2581already has a metaspace \u2581 char",
    "\u0120G-dot and \u010a newline glyphs",
    "control \u0001 and \u007f chars",
    "Beautiful is better than ugly. Explicit is better than implicit.",
]

# Extra cases, not lines of corpus.txt: invalid UTF-8, NUL, the whole corpus as one text.
EXTRA_BYTES = [
    b"bad \xff byte",
    b"truncated \xe4\xbd",
    b"overlong \xc0\xaf and surrogate \xed\xa0\x80 end",
    b"\x80\x80 lone continuation",
    b"nul\x00inside",
    b"\xf4\x90\x80\x80 above U+10FFFF",
]


def random_cases(count=120, seed=20240611):
    """Seeded random texts glued from fragments that stress the pipeline: words, added-token
    strings (with and without surrounding spaces), whitespace runs, digits, punctuation, the
    metaspace and byte-level marker characters and code points from many scripts and planes."""
    import random
    rng = random.Random(seed)
    words = " ".join(CORPUS).split()
    specials = ["<s>", "</s>", "<unk>", "[INST]", "[/INST]", "<|im_start|>", "<|im_end|>",
                "<|endoftext|>", "<|begin_of_text|>", "<sep>", "<mask>", "<pad>", " inside", "<",
                "[", "<|"]
    spaces = [" ", "  ", "   ", "\t", "\n", "\n\n", " \n ", "\r\n", "\u3000", "\u00a0", "\u2009", " \t"]
    ranges = [(0x20, 0x7e), (0xa0, 0x17f), (0x300, 0x36f), (0x391, 0x3c9), (0x400, 0x45f),
              (0x5d0, 0x5ea), (0x600, 0x6ff), (0x900, 0x97f), (0x3040, 0x30ff), (0x4e00, 0x4fff),
              (0xac00, 0xac80), (0x1f300, 0x1f6ff), (0x1f900, 0x1f9ff), (0x10000, 0x1007f),
              (0x2000, 0x206f), (0xfe00, 0xfe0f), (0xe000, 0xe010)]
    out = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 12)):
            k = rng.random()
            if k < 0.35:
                parts.append(rng.choice(words))
            elif k < 0.5:
                parts.append(rng.choice(specials))
            elif k < 0.7:
                parts.append(rng.choice(spaces))
            elif k < 0.78:
                parts.append(str(rng.randint(0, 10 ** rng.randint(1, 9))))
            elif k < 0.84:
                parts.append(rng.choice(["'s", "'T", "'ll", "...", "--", "!?", "\u2581", "\u0120", "(", "){", "__"]))
            else:
                lo, hi = rng.choice(ranges)
                parts.append("".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 4))))
        out.append("".join(parts))
    return out


def training_text():
    """Deterministic training text: the Zen of Python (stdlib), the corpus, and a little more,
    repeated so that the BPE trainer learns a few hundred real merges."""
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):  # importing `this` prints the Zen
        import this
    zen = codecs.decode(this.s, "rot13")
    extra = [
        "The capital of Austria is Vienna. The capital of France is Paris. The capital of Germany is Berlin.",
        "Hello there! How are you doing today? I am doing well, thank you for asking.",
        "Die Hauptstadt von Österreich ist Wien. Grüße aus München und Zürich.",
        "La capitale de la France est Paris. Le café est très bon à Montréal.",
        "北京是中国的首都。东京是日本的首都。",
        "Москва — столица России. Киев — столица Украины.",
        "def main():\n    for i in range(10):\n        print(i, i * i)\n",
        "int main(void) { return 0; }  // the answer is 42, not 41.",
    ]
    return [zen] * 4 + CORPUS * 3 + extra * 5


def train_bpe(words, n_merges, min_count=2):
    """A plain BPE trainer (most frequent pair first, ties to the smallest pair), deterministic
    where HF's BpeTrainer breaks ties by hash order. words: {tuple of symbols: count}."""
    from collections import Counter
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for w, c in words.items():
            for x, y in zip(w, w[1:]):
                pairs[(x, y)] += c
        if not pairs:
            break
        (x, y), cnt = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if cnt < min_count:
            break
        merges.append((x, y))
        merged = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == x and w[i + 1] == y:
                    out.append(x + y)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + c
        words = merged
    return merges


def pretokenized_words(pre, lines, alphabet=None):
    """{word as a tuple of characters: count} after an HF pre-tokenizer; characters outside
    `alphabet` (if given) split words, as a trainer's limit_alphabet drops them."""
    from collections import Counter
    words = Counter()
    for line in lines:
        for piece, _ in pre.pre_tokenize_str(line):
            cur = []
            for ch in piece + "\0":
                if ch == "\0" or (alphabet is not None and ch not in alphabet):
                    if cur:
                        words[tuple(cur)] += 1
                    cur = []
                else:
                    cur.append(ch)
    return words


def bpe_vocab(specials, alphabet, merges):
    vocab = {}
    for tok in list(specials) + list(alphabet) + [x + y for x, y in merges]:
        if tok not in vocab:
            vocab[tok] = len(vocab)
    return vocab


def train_spm_model():
    """A SentencePiece-style BPE (metaspace words, byte_fallback) trained on the text above.
    Mistral's layout: <unk> <s> </s>, the 256 byte tokens, the characters seen at least 3 times
    (rarer ones are left to byte fallback), then the merged pieces."""
    from collections import Counter
    pre = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    counts = Counter(ch for line in training_text() for piece, _ in pre.pre_tokenize_str(line) for ch in piece)
    alphabet = [ch for ch, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= 3]
    merges = train_bpe(pretokenized_words(pre, training_text(), set(alphabet)), 750)
    specials = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    return bpe_vocab(specials, alphabet, merges), merges


def train_bytelevel(pre, n_merges, specials, lines=None):
    """Byte-level BPE: the 256 byte characters, then the merges learned on pre-tokenized words."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    alphabet.sort(key=lambda ch: ord(ch))
    merges = train_bpe(pretokenized_words(pre, lines or training_text()), n_merges)
    return bpe_vocab(specials, alphabet, merges), merges


def spm_tokenizer(vocab, merges, style):
    t = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True,
                             byte_fallback=True, dropout=None))
    if style == "legacy":
        t.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
        t.pre_tokenizer = None
    elif style == "metaspace":
        t.normalizer = None
        t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    else:
        t.normalizer = None
        t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    if style == "metaspace_split":
        t.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    else:
        t.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                       decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    t.add_special_tokens([AddedToken("<unk>", special=True, normalized=False),
                          AddedToken("<s>", special=True, normalized=False),
                          AddedToken("</s>", special=True, normalized=False),
                          AddedToken("[INST]", special=True, normalized=False),
                          AddedToken("[/INST]", special=True, normalized=False)])
    if style == "legacy":
        # normalized added tokens are matched after the normalizer ran ("▁<sep>" here)
        t.add_tokens([AddedToken("<sep>", normalized=True),
                      AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False)])
    elif style == "metaspace":
        t.add_tokens([AddedToken("<sep>", single_word=True, normalized=False),
                      AddedToken("<mask>", lstrip=True, rstrip=True, normalized=False)])
    else:
        t.add_special_tokens([AddedToken("<pad>", special=True, normalized=False, rstrip=True)])
    t.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                     special_tokens=[("<s>", 1)])
    return t


def bl_llama3_tokenizer():
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    vocab, merges = train_bytelevel(pre, 950, ["<|begin_of_text|>", "<|end_of_text|>"])
    t = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=True))
    t.pre_tokenizer = pre
    t.decoder = decoders.ByteLevel()
    t.add_special_tokens([AddedToken("<|begin_of_text|>", special=True, normalized=False),
                          AddedToken("<|end_of_text|>", special=True, normalized=False),
                          AddedToken("<|im_start|>", special=True, normalized=False),
                          AddedToken("<|im_end|>", special=True, normalized=False)])
    t.add_tokens([AddedToken("<sep>", normalized=False, rstrip=True),
                  AddedToken(" inside", normalized=True)])
    t.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", t.token_to_id("<|begin_of_text|>"))])
    return t


def bl_gpt2_tokenizer():
    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    vocab, merges = train_bytelevel(pre, 750, ["<|endoftext|>"])
    t = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    t.decoder = decoders.ByteLevel()
    t.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    t.add_tokens([AddedToken("<mask>", lstrip=True, normalized=False),
                  AddedToken("<pad>", single_word=True, normalized=False)])
    t.post_processor = processors.ByteLevel(trim_offsets=True)
    return t


def write_json_tokenizer(t, name, config, merges_as_strings=False):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "tokenizer.json")
    data = json.loads(t.to_str())
    if merges_as_strings:  # the older serialisation: "a b"
        data["model"]["merges"] = [" ".join(m) for m in data["model"]["merges"]]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=1)
    # the reference is what HF makes of the file as written, not the object in memory
    return Tokenizer.from_file(path), path


def cases():
    out = [c.encode("utf-8") for c in CORPUS]
    out += EXTRA_BYTES
    out.append(("\n".join(CORPUS)).encode("utf-8"))
    out += [c.encode("utf-8") for c in random_cases()]
    # about 10 kB: the C test also times this one
    out.append(("\n".join(CORPUS * 5)).encode("utf-8"))
    return out


def put_text(row, key, raw):
    """A JSON string where it can be one (cJSON strings end at NUL), else hex under key_hex."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\0" in text:
        row[key + "_hex"] = raw.hex()
    else:
        row[key] = text


def expected(encode, decode, name, source, meta, note=""):
    rows = []
    for raw in cases():
        text = raw.decode("utf-8", "replace")
        ids = encode(text, True)
        plain = encode(text, False)
        row = {}
        put_text(row, "text", raw)
        row["ids"] = ids
        row["ids_plain"] = plain
        put_text(row, "decoded", decode(ids, False).encode("utf-8"))
        put_text(row, "decoded_skip", decode(ids, True).encode("utf-8"))
        rows.append(row)
    doc = {"tokenizer": source, "note": note}
    doc.update(meta)
    doc["cases"] = rows
    with open(os.path.join(OUT, "expected_%s.json" % name), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
    return rows


def hf_meta(t, bos, eos):
    """Vocabulary facts the C test checks besides encode/decode: the id space, BOS/EOS, whether
    BOS is added, and id_to_token for all added tokens and a sample of the vocabulary."""
    vocab = t.get_vocab(with_added_tokens=True)
    n_ids = max(vocab.values()) + 1
    added = sorted(t.get_added_tokens_decoder().keys())
    sample = sorted(set(added) | set(range(0, n_ids, 37)) | {n_ids - 1})
    pieces = [[i, t.id_to_token(i).encode("utf-8").hex()] for i in sample if t.id_to_token(i) is not None]
    specials = [i for i, a in t.get_added_tokens_decoder().items() if a.special]
    bos_id = t.token_to_id(bos) if bos else None
    first = t.encode("x", add_special_tokens=True).ids
    return {"n_ids": n_ids, "bos": -1 if bos_id is None else bos_id,
            "eos": -1 if not eos or t.token_to_id(eos) is None else t.token_to_id(eos),
            "adds_bos": bool(bos_id is not None and first and first[0] == bos_id),
            "special_ids": sorted(specials), "pieces": pieces}


def hf_funcs(t):
    enc = lambda s, special: t.encode(s, add_special_tokens=special).ids
    dec = lambda ids, skip: t.decode(ids, skip_special_tokens=skip)
    return enc, dec


def install_gguf_reader_shim():
    """transformers' GGUF metadata reader imports torch at module level only for its tensor
    half; these functions are lifted out of its reader.py unchanged, so that the tokenizer
    conversion (the part under test) runs as transformers ships it, without torch."""
    spec = importlib.util.find_spec("transformers")
    path = os.path.join(os.path.dirname(spec.origin), "integrations", "gguf", "reader.py")
    tree = ast.parse(open(path, encoding="utf-8").read())
    keep_f = {"read_gguf_metadata", "_read_metadata", "_read_value", "_read_string",
              "_read_tensor_table", "_mapped"}
    keep_v = {"_GGUF_VERSIONS", "_KV_FORMAT", "_KV_WIDTH"}
    body = [n for n in tree.body
            if (isinstance(n, ast.FunctionDef) and n.name in keep_f)
            or (isinstance(n, ast.Assign) and any(isinstance(x, ast.Name) and x.id in keep_v for x in n.targets))]
    mod = types.ModuleType("transformers.integrations.gguf.reader")
    mod.__dict__.update({"struct": struct, "np": __import__("numpy"), "Container": object})
    exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"), mod.__dict__)
    sys.modules[mod.__name__] = mod


def transformers_gguf(path):
    """The tokenizer AutoTokenizer builds for a llama-architecture GGUF (LlamaTokenizer class with
    the backend converted from the file's metadata)."""
    from transformers import LlamaTokenizer
    return LlamaTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))


def tf_funcs(t):
    enc = lambda s, special: t(s, add_special_tokens=special)["input_ids"]
    dec = lambda ids, skip: t.backend_tokenizer.decode(ids, skip_special_tokens=skip)
    return enc, dec


def write_gguf(path, model, tokens, types_, scores=None, merges=None, bos=None, eos=None, unk=None,
               pad=None, add_bos=None, pre=None):
    import gguf
    import numpy as np
    w = gguf.GGUFWriter(path, "llama")
    w.add_string("general.name", "headpursuit tokenizer fixture")
    w.add_tokenizer_model(model)
    if pre is not None:
        w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types_)
    if scores is not None:
        w.add_token_scores(scores)
    if merges is not None:
        w.add_token_merges(merges)
    for fn, v in ((w.add_bos_token_id, bos), (w.add_eos_token_id, eos), (w.add_unk_token_id, unk),
                  (w.add_pad_token_id, pad)):
        if v is not None:
            fn(v)
    if add_bos is not None:
        w.add_add_bos_token(add_bos)
    w.add_tensor("token_embd.weight", np.zeros((1, 1), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def gguf_from_json(t, model):
    """tokens / types / scores / merges in llama.cpp's layout, from a tokenizer.json."""
    data = json.loads(t.to_str())
    vocab = data["model"]["vocab"]
    n = max(max(vocab.values()), max(a["id"] for a in data["added_tokens"])) + 1
    tokens = ["[PAD%d]" % i for i in range(n)]
    types_ = [1] * n
    for piece, i in vocab.items():
        tokens[i] = piece
    for a in data["added_tokens"]:
        tokens[a["id"]] = a["content"]
        types_[a["id"]] = 3 if a["special"] else 4
    for i, p in enumerate(tokens):
        if len(p) == 6 and p.startswith("<0x") and p.endswith(">"):
            types_[i] = 6
    merges = [" ".join(m) if isinstance(m, list) else m for m in data["model"]["merges"]]
    return tokens, types_, merges


def smollm2_fixture():
    """SmolLM2's tokenizer from its GGUF, as transformers converts it, with one correction: the
    original tokenizer.json of HuggingFaceTB/SmolLM2-135M-Instruct, and llama.cpp for
    tokenizer.ggml.pre = "smollm", split digits one by one before the GPT-2 regex
    (Sequence[Digits(individual_digits=True), ByteLevel]); transformers' conversion omits the
    Digits step, which changes e.g. "  1" (ĠĠ 1 vs Ġ Ġ1 -> Ġ Ġ 1). The fixture follows the model."""
    install_gguf_reader_shim()
    tf = transformers_gguf(SMOL_GGUF)
    t = Tokenizer.from_str(tf.backend_tokenizer.to_str())
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    config = {"bos_token": tf.bos_token, "eos_token": tf.eos_token, "unk_token": tf.unk_token,
              "pad_token": tf.pad_token, "add_bos_token": False}
    t2, path = write_json_tokenizer(t, "smollm2", config)
    diff = 0
    for raw in cases():
        s = raw.decode("utf-8", "replace")
        if tf(s, add_special_tokens=True)["input_ids"] != t2.encode(s).ids:
            diff += 1
    note = ("SmolLM2-135M-Instruct tokenizer (from the GGUF via transformers, plus Digits split as "
            "the original tokenizer.json and llama.cpp do); transformers' GGUF conversion alone "
            "differs on %d of %d cases" % (diff, len(cases())))
    print(note)
    enc, dec = hf_funcs(t2)
    expected(enc, dec, "smollm2", "smollm2/tokenizer.json and ../../models/SmolLM2-135M-Instruct.Q4_1.gguf",
             hf_meta(t2, tf.bos_token, tf.eos_token), note)


def variants_and_seeds():
    """Tiny tokenizers covering the remaining supported components (Strip and Regex Replace
    normalizers, Split with every behaviour and invert, Digits contiguous, Metaspace decoder,
    RobertaProcessing in a Sequence, normalized/single_word/lstrip/rstrip added tokens, added
    tokens spelled like byte tokens), each checked against HF like the main fixtures
    (variants/<name>.json + expected_variant_<name>.json). They double as seeds for
    tests/fuzz/fuzz_tokenizer.c (which loads inputs starting with '{'), with texts prefixed by a
    byte that picks a fixture tokenizer."""
    d = os.path.join(ROOT, "tests", "fuzz", "seeds", "tokenizer")
    vdir = os.path.join(OUT, "variants")
    os.makedirs(d, exist_ok=True)
    os.makedirs(vdir, exist_ok=True)
    written = []

    def emit(name, tok):
        js = tok.to_str()
        for folder in (d, vdir):
            with open(os.path.join(folder, name + ".json"), "w", encoding="utf-8") as f:
                f.write(js)
        written.append(name)

    text = ["Hello world, hello there. The capital of Austria is Vienna. 123 4567",
            "caf\u00e9 na\u00efve \u4f60\u597d \U0001f44d\U0001f3fd  x\ty\nz"] * 20
    from collections import Counter
    mpre = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    counts = Counter(ch for line in text for piece, _ in mpre.pre_tokenize_str(line) for ch in piece)
    alphabet = sorted(ch for ch, c in counts.items() if c >= 20)
    merges = train_bpe(pretokenized_words(mpre, text, set(alphabet)), 40)
    vocab = bpe_vocab(["<unk>", "<s>", "</s>"] + ["<0x%02X>" % i for i in range(0, 256, 7)], alphabet, merges)
    t = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    t.add_special_tokens(["<unk>", "<s>", "</s>"])
    t.add_tokens([AddedToken("<0x0A>", special=False), AddedToken("<0xC3>", special=False)])
    t.add_special_tokens([AddedToken("[INST]", special=True, normalized=False, lstrip=True, rstrip=True)])
    t.add_tokens([AddedToken("sep", single_word=True, normalized=True)])
    t.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    variants = {
        "spm_metaspace": (None, pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False),
                               decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                                  decoders.Fuse(), decoders.Strip(" ", 1, 0)])),
        "spm_legacy": (normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")]),
                            None, decoders.Metaspace(replacement="\u2581", prepend_scheme="always")),
        "spm_strip_regex": (normalizers.Sequence([normalizers.Strip(), normalizers.Replace(Regex(" +"), "\u2581")]),
                                 pre_tokenizers.Split(Regex("\\p{N}|\u2581"), behavior="merged_with_next", invert=False),
                                 decoders.Sequence([decoders.Replace(Regex("\u2581+"), " "), decoders.Fuse()])),
    }
    for name, (norm, pre, dec) in variants.items():
        t.normalizer, t.pre_tokenizer, t.decoder = norm, pre, dec
        emit(name, t)
    vocab, merges = train_bytelevel(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), 60,
                                    ["<|endoftext|>"], text)
    b = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=True))
    b.add_special_tokens(["<|endoftext|>"])
    b.decoder = decoders.ByteLevel()
    b.add_tokens([AddedToken("<mask>", lstrip=True, normalized=False)])
    for name, pre in (("bl_gpt2", pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)),
                      ("bl_split", pre_tokenizers.Sequence([
                          pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
                          pre_tokenizers.Digits(individual_digits=False),
                          pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])),
                      ("bl_digits", pre_tokenizers.Sequence([
                          pre_tokenizers.Digits(individual_digits=True),
                          pre_tokenizers.Split(" ", behavior="contiguous", invert=True),
                          pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]))):
        b.pre_tokenizer = pre
        b.post_processor = processors.Sequence([processors.ByteLevel(), processors.RobertaProcessing(("</s>", 0), ("<s>", 0))]) \
            if name == "bl_digits" else processors.ByteLevel()
        emit(name, b)
    for i, line in enumerate(CORPUS[::4] + [c.decode("utf-8", "replace") for c in EXTRA_BYTES]):
        raw = line.encode("utf-8") if i < len(CORPUS[::4]) else EXTRA_BYTES[i - len(CORPUS[::4])]
        with open(os.path.join(d, "text_%02d" % i), "wb") as f:
            f.write(bytes([i % 6]) + raw)
    for name in written:
        t = Tokenizer.from_file(os.path.join(vdir, name + ".json"))
        enc, dec = hf_funcs(t)
        meta = hf_meta(t, None, None)
        for k in ("bos", "eos", "adds_bos"):  # no tokenizer_config.json: BOS/EOS are guesses
            meta.pop(k)
        expected(enc, dec, "variant_" + name, "variants/%s.json" % name, meta)


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "corpus.txt"), "w", encoding="utf-8", newline="") as f:
        for line in CORPUS:
            f.write(line.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + "\n")

    vocab, merges = train_spm_model()
    spm_cfg = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True}
    for style, strings in (("legacy", True), ("metaspace", False), ("metaspace_split", False)):
        name = "spm_" + style
        t, path = write_json_tokenizer(spm_tokenizer(vocab, merges, style), name, spm_cfg, strings)
        enc, dec = hf_funcs(t)
        expected(enc, dec, name, name + "/tokenizer.json", hf_meta(t, "<s>", "</s>"))
        if style == "metaspace":
            spm_t = t

    t, _ = write_json_tokenizer(bl_llama3_tokenizer(), "bl_llama3",
                                {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"})
    enc, dec = hf_funcs(t)
    expected(enc, dec, "bl_llama3", "bl_llama3/tokenizer.json", hf_meta(t, "<|begin_of_text|>", "<|end_of_text|>"))
    t, _ = write_json_tokenizer(bl_gpt2_tokenizer(), "bl_gpt2",
                                {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"})
    enc, dec = hf_funcs(t)
    expected(enc, dec, "bl_gpt2", "bl_gpt2/tokenizer.json", hf_meta(t, "<|endoftext|>", "<|endoftext|>"))
    bl_t = t

    # GGUF fixtures, converted back by transformers: SentencePiece by scores (no merges) and
    # GPT-2 byte-level with merges.
    install_gguf_reader_shim()
    gdir = os.path.join(OUT, "gguf")
    os.makedirs(gdir, exist_ok=True)
    tokens, types_, _ = gguf_from_json(spm_t, "llama")
    types_[0] = 2  # <unk> is UNKNOWN in llama.cpp files
    types_[tokens.index("<sep>")] = 4
    # SentencePiece BPE scores: later pieces (later merges) score lower; bytes and controls 0
    scores = [0.0 if types_[i] != 1 else -float(i) for i in range(len(tokens))]
    path = os.path.join(gdir, "spm.gguf")
    write_gguf(path, "llama", tokens, types_, scores=scores, bos=1, eos=2, unk=0, add_bos=True)
    tf = transformers_gguf(path)
    enc, dec = tf_funcs(tf)
    expected(enc, dec, "spm_gguf", "gguf/spm.gguf (llama, scores, no merges)",
             hf_meta(tf.backend_tokenizer, tf.bos_token, tf.eos_token))

    tokens, types_, merges = gguf_from_json(bl_t, "gpt2")
    path = os.path.join(gdir, "bl_gpt2.gguf")
    write_gguf(path, "gpt2", tokens, types_, merges=merges, bos=0, eos=0, pre="gpt2", add_bos=False)
    tf = transformers_gguf(path)
    enc, dec = tf_funcs(tf)
    expected(enc, dec, "bl_gpt2_gguf", "gguf/bl_gpt2.gguf (gpt2, merges)",
             hf_meta(tf.backend_tokenizer, tf.bos_token, tf.eos_token))

    variants_and_seeds()
    import shutil
    for name in ("spm.gguf", "bl_gpt2.gguf"):  # GGUF-mode seeds for the fuzzer
        shutil.copyfile(os.path.join(gdir, name), os.path.join(ROOT, "tests", "fuzz", "seeds", "tokenizer", name))
    if os.path.exists(SMOL_GGUF):
        smollm2_fixture()
    else:
        print("skipping SmolLM2: %s not found (run scripts/fetch_smollm2.sh)" % SMOL_GGUF)


if __name__ == "__main__":
    main()
