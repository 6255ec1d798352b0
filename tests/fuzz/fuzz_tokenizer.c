/* fuzz_tokenizer.c: libFuzzer harness for weights/tokenizer*.c, three modes chosen by the
 * first bytes:
 *  - '{': the input is a tokenizer.json. It is written to a private temporary directory,
 *    loaded, and (if it loads) used to encode a fixed text with and without special tokens and
 *    to decode the ids back; then freed. Loading may fail, nothing may crash or leak.
 *  - "GGUF": the input is a GGUF file; if the GGUF reader accepts it, hp_tok_from_gguf builds a
 *    tokenizer from its metadata, which then encodes and decodes the fixed text.
 *  - anything else: byte 0 picks one of the fixture tokenizers (tests/fixtures/tok, or
 *    $HP_TOK_FIXTURES), the rest is encoded as is (arbitrary bytes, invalid UTF-8 included) and
 *    decoded back. For bl_llama3 (byte-level, all 256 byte characters in its vocabulary, no
 *    prefix space) decode(encode(x)) must give x with every invalid UTF-8 subsequence replaced
 *    by U+FFFD (checked when x holds no NUL and no "<sep>", an rstrip token that swallows the
 *    spaces after it). SmolLM2 does not qualify: its vocabulary lacks a few byte characters
 *    (e.g. for 0x14), which HF, having no unk token, drops.
 * Seeds: tests/fuzz/seeds/tokenizer/. Run from the repository root:
 *   build/fuzz/fuzz_tokenizer tests/fuzz/corpus-tokenizer tests/fuzz/seeds/tokenizer */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "store.h"
#include "tokenizer.h"

static const char *const fixture_names[] = {"spm_legacy", "spm_metaspace", "spm_metaspace_split",
                                             "bl_llama3", "bl_gpt2", "smollm2"};
enum { N_FIX = 6, BL_LLAMA3 = 3 };
static hp_tokenizer *fixtures[N_FIX];
static char tmpdir[64], tmpjson[128], tmpgguf[128];
static const char fixed_text[] = "Hello  w\xc3\xb6rld 123 <s>[INST] \xe2\x96\x81x\tG\xff\xc3\n<|im_start|>";

static void setup(void) {
    static int done;
    if (done) return;
    done = 1;
    const char *root = getenv("HP_TOK_FIXTURES");
    if (!root) root = "tests/fixtures/tok";
    for (int i = 0; i < N_FIX; i++) {
        char path[512];
        hp_err e = {{0}};
        snprintf(path, sizeof path, "%s/%s/tokenizer.json", root, fixture_names[i]);
        if (!(fixtures[i] = hp_tok_from_json(path, &e))) {
            fprintf(stderr, "fuzz_tokenizer: %s (run from the repository root or set HP_TOK_FIXTURES)\n", e.msg);
            abort();
        }
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fuzz_tok.XXXXXX");
    if (!mkdtemp(tmpdir)) abort();
    snprintf(tmpjson, sizeof tmpjson, "%s/tokenizer.json", tmpdir);
    snprintf(tmpgguf, sizeof tmpgguf, "%s/model.gguf", tmpdir);
}

/* The text with each maximal invalid UTF-8 subsequence replaced by U+FFFD, computed here
 * independently of the tokenizer's own routine. */
static size_t lossy(const uint8_t *s, size_t n, char *out) {
    size_t i = 0, m = 0;
    while (i < n) {
        uint8_t b = s[i];
        size_t need = 0, k;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b < 0x80) {
            out[m++] = (char)b;
            i++;
            continue;
        }
        if (b >= 0xC2 && b <= 0xDF) need = 1;
        else if (b >= 0xE0 && b <= 0xEF) need = 2, lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
        else if (b >= 0xF0 && b <= 0xF4) need = 3, lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
        for (k = 1; k <= need && i + k < n; k++) {
            uint8_t c = s[i + k];
            if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) break;
        }
        if (need && k == need + 1) {
            memcpy(out + m, s + i, need + 1);
            m += need + 1;
            i += need + 1;
        } else {
            memcpy(out + m, "\xEF\xBF\xBD", 3);
            m += 3;
            i += need ? k : 1;
        }
    }
    out[m] = 0;
    return m;
}

static void encode_decode(const hp_tokenizer *t, const char *text, size_t len, int check_roundtrip) {
    hp_err e = {{0}};
    int32_t *ids = NULL;
    int n = 0;
    for (int special = 0; special < 2; special++) {
        if (hp_tok_encode(t, text, len, special, &ids, &n, &e)) {
            fprintf(stderr, "encode failed: %s\n", e.msg);
            abort(); /* a loaded tokenizer must encode any bytes */
        }
        for (int skip = 0; skip < 2; skip++) {
            char *d = hp_tok_decode(t, ids, n, skip);
            if (!d) abort();
            if (check_roundtrip && !special && !skip && !memchr(text, 0, len) && !memmem(text, len, "<sep>", 5)) {
                char *want = malloc(len * 3 + 1);
                if (!want) abort();
                lossy((const uint8_t *)text, len, want);
                if (strcmp(want, d)) {
                    fprintf(stderr, "round trip differs:\n want \"%s\"\n got  \"%s\"\n", want, d);
                    abort();
                }
                free(want);
            }
            free(d);
        }
        free(ids);
    }
    /* lookups over the whole id range and one past it */
    for (int i = -1; i <= hp_tok_vocab_size(t) && i < 4096; i++) {
        const char *p = hp_tok_piece(t, i);
        if (p) (void)hp_tok_id(t, p);
        (void)hp_tok_is_special(t, i);
    }
    (void)hp_tok_bos(t);
    (void)hp_tok_eos(t);
    (void)hp_tok_adds_bos(t);
    (void)hp_tok_kind_of(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    if (size == 0) return 0;
    if (data[0] == '{') {
        FILE *f = fopen(tmpjson, "wb");
        if (!f) abort();
        if (fwrite(data, 1, size, f) != size) abort();
        fclose(f);
        hp_err e = {{0}};
        hp_tokenizer *t = hp_tok_from_json(tmpjson, &e);
        if (t) {
            encode_decode(t, fixed_text, sizeof fixed_text - 1, 0);
            hp_tok_free(t);
        } else if (!strstr(e.msg, tmpjson)) {
            fprintf(stderr, "error message does not name the file: %s\n", e.msg);
            abort();
        }
        return 0;
    }
    if (size >= 4 && !memcmp(data, "GGUF", 4)) {
        FILE *f = fopen(tmpgguf, "wb");
        if (!f) abort();
        if (fwrite(data, 1, size, f) != size) abort();
        fclose(f);
        hp_err e = {{0}};
        hp_store st;
        if (hp_store_open_gguf(&st, tmpgguf, &e)) return 0;
        hp_tokenizer *t = hp_tok_from_gguf(st.gguf, &e);
        if (t) {
            encode_decode(t, fixed_text, sizeof fixed_text - 1, 0);
            hp_tok_free(t);
        } else if (!strstr(e.msg, tmpgguf)) {
            fprintf(stderr, "error message does not name the file: %s\n", e.msg);
            abort();
        }
        hp_store_close(&st);
        return 0;
    }
    int k = data[0] % N_FIX;
    encode_decode(fixtures[k], (const char *)data + 1, size - 1, k == BL_LLAMA3);
    return 0;
}
