/* dataset.c: QA set readers (JSONL and TriviaQA JSON, via cJSON) and the word-list reader.
 * cJSON does not check UTF-8, so every string we keep is checked here: a bad byte in a
 * question would otherwise reach the tokenizer far from the file that caused it. */
#include "dataset.h"
#include "fileio.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

long hp_utf8_invalid_at(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return (long)i; /* continuation byte first, C0/C1 overlong lead, or past U+10FFFF */
        }
        if (n - i < len) return (long)i;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) return (long)i;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return (long)i;
        i += len;
    }
    return -1;
}

const char *hp_qa_kind_name(int kind) {
    switch (kind) {
    case HP_QA_COUNTRY: return "country";
    case HP_QA_OTHER: return "other";
    default: return "unknown";
    }
}

static void item_free(hp_qa_item *it) {
    free(it->id);
    free(it->question);
    for (int i = 0; i < it->n_answers; i++) free(it->answers[i]);
    free(it->answers);
    memset(it, 0, sizeof *it);
}

void hp_qa_free(hp_qa_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) item_free(&s->items[i]);
    free(s->items);
    s->items = NULL;
    s->n = 0;
}

/* Growable array helper: ensures room for one more element of size sz. */
static int grow(void **arr, int *cap, int n, size_t sz) {
    if (n < *cap) return 0;
    if (*cap > (1 << 28)) return -1;
    int nc = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, (size_t)nc * sz);
    if (!p) return -1;
    *arr = p;
    *cap = nc;
    return 0;
}

/* Copies a JSON string value after checking its UTF-8. where: "path:line" or "path: Data[i]". */
static int dup_checked(const char *s, char **out, const char *where, const char *field, hp_err *e) {
    size_t n = strlen(s);
    long bad = hp_utf8_invalid_at(s, n);
    if (bad >= 0) return hp_errf(e, "%s: \"%s\" has invalid UTF-8 at byte %ld", where, field, bad);
    *out = strdup(s);
    if (!*out) return hp_errf(e, "%s: out of memory", where);
    return 0;
}

/* Appends an answer unless it is already there (TriviaQA repeats Value among its Aliases). */
static int add_answer(hp_qa_item *it, int *cap, const char *a, const char *where, hp_err *e) {
    for (int i = 0; i < it->n_answers; i++)
        if (!strcmp(it->answers[i], a)) return 0;
    if (grow((void **)&it->answers, cap, it->n_answers, sizeof(char *)))
        return hp_errf(e, "%s: out of memory", where);
    if (dup_checked(a, &it->answers[it->n_answers], where, "answer", e)) return -1;
    it->n_answers++;
    return 0;
}

static int push_item(hp_qa_set *s, int *cap, hp_qa_item *it, const char *path, hp_err *e) {
    if (grow((void **)&s->items, cap, s->n, sizeof *it)) {
        item_free(it);
        return hp_errf(e, "%s: out of memory", path);
    }
    s->items[s->n++] = *it;
    return 0;
}

/* Line (1-based) of a byte offset, for errors inside a whole-file JSON document. */
static long line_of(const char *buf, size_t off) {
    long line = 1;
    for (size_t i = 0; i < off; i++) line += buf[i] == '\n';
    return line;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Parses one JSON value that must fill buf[0..n) apart from whitespace. On failure *err_off
 * is the byte offset cJSON stopped at. */
static cJSON *parse_exact(const char *buf, size_t n, size_t *err_off) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, n, &end, 0);
    if (!j) {
        *err_off = end && end >= buf && end <= buf + n ? (size_t)(end - buf) : 0;
        return NULL;
    }
    size_t off = (size_t)(end - buf);
    while (off < n && is_space(buf[off])) off++;
    if (off < n) {
        cJSON_Delete(j);
        *err_off = off;
        return NULL;
    }
    return j;
}

/* ---- JSONL --------------------------------------------------------------------------------- */

static int jsonl_record(const cJSON *j, long line, const char *path, hp_qa_item *it, hp_err *e) {
    char where[1100];
    snprintf(where, sizeof where, "%s:%ld", path, line);
    memset(it, 0, sizeof *it);
    it->line = line;
    int acap = 0;
    if (!cJSON_IsObject(j)) return hp_errf(e, "%s: expected a JSON object", where);

    const cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "question");
    if (!q) return hp_errf(e, "%s: missing \"question\"", where);
    if (!cJSON_IsString(q)) return hp_errf(e, "%s: \"question\" is not a string", where);
    if (!q->valuestring[0]) return hp_errf(e, "%s: \"question\" is empty", where);
    if (dup_checked(q->valuestring, &it->question, where, "question", e)) goto fail;

    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    if (id && cJSON_IsString(id)) {
        if (dup_checked(id->valuestring, &it->id, where, "id", e)) goto fail;
    } else if (id && cJSON_IsNumber(id) && fabs(id->valuedouble) < 9e15 &&
               id->valuedouble == floor(id->valuedouble)) { /* exact in a double and a long long */
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%lld", (long long)id->valuedouble);
        it->id = strdup(tmp);
    } else if (id && !cJSON_IsNull(id)) {
        hp_errf(e, "%s: \"id\" is neither a string nor an integer", where);
        goto fail;
    } else {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%ld", line); /* stable: the record's line in its file */
        it->id = strdup(tmp);
    }
    if (!it->id) {
        hp_errf(e, "%s: out of memory", where);
        goto fail;
    }

    const cJSON *as = cJSON_GetObjectItemCaseSensitive(j, "answers");
    const cJSON *a1 = cJSON_GetObjectItemCaseSensitive(j, "answer");
    if (as) {
        if (!cJSON_IsArray(as)) {
            hp_errf(e, "%s: \"answers\" is not an array", where);
            goto fail;
        }
        int k = 0;
        for (const cJSON *a = as->child; a; a = a->next, k++) {
            if (!cJSON_IsString(a)) {
                hp_errf(e, "%s: \"answers\"[%d] is not a string", where, k);
                goto fail;
            }
            if (!a->valuestring[0]) {
                hp_errf(e, "%s: \"answers\"[%d] is empty", where, k);
                goto fail;
            }
            if (add_answer(it, &acap, a->valuestring, where, e)) goto fail;
        }
    } else if (a1) {
        if (!cJSON_IsString(a1)) {
            hp_errf(e, "%s: \"answer\" is not a string", where);
            goto fail;
        }
        if (!a1->valuestring[0]) {
            hp_errf(e, "%s: \"answer\" is empty", where);
            goto fail;
        }
        if (add_answer(it, &acap, a1->valuestring, where, e)) goto fail;
    }
    if (it->n_answers == 0) {
        hp_errf(e, "%s: no answers (need \"answers\": [...] or \"answer\": \"...\")", where);
        goto fail;
    }

    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
    it->kind = HP_QA_UNKNOWN;
    if (kind && !cJSON_IsNull(kind)) {
        if (!cJSON_IsString(kind)) {
            hp_errf(e, "%s: \"kind\" is not a string", where);
            goto fail;
        }
        if (!strcmp(kind->valuestring, "country")) it->kind = HP_QA_COUNTRY;
        else if (!strcmp(kind->valuestring, "other")) it->kind = HP_QA_OTHER;
        else if (strcmp(kind->valuestring, "unknown")) {
            hp_errf(e, "%s: \"kind\" must be \"country\", \"other\" or \"unknown\", not \"%.64s\"",
                    where, kind->valuestring);
            goto fail;
        }
    }
    return 0;
fail:
    item_free(it);
    return -1;
}

static int load_jsonl_buf(const char *path, const char *buf, size_t len, hp_qa_set *out,
                          hp_err *e) {
    hp_qa_set s = {0};
    int cap = 0;
    long line = 0;
    size_t pos = 0;
    if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3)) pos = 3; /* editors on Windows add a BOM */
    while (pos < len) {
        line++;
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        size_t ls = pos, a = pos, b = end;
        pos = nl ? end + 1 : len;
        while (a < b && is_space(buf[a])) a++;
        while (b > a && is_space(buf[b - 1])) b--;
        if (a == b) continue;
        if (memchr(buf + a, 0, b - a)) {
            hp_qa_free(&s);
            return hp_errf(e, "%s:%ld: NUL byte in line", path, line);
        }
        size_t off = 0;
        cJSON *j = parse_exact(buf + a, b - a, &off);
        if (!j) {
            hp_qa_free(&s);
            return hp_errf(e, "%s:%ld: malformed JSON at column %zu", path, line, a - ls + off + 1);
        }
        hp_qa_item it;
        int rc = jsonl_record(j, line, path, &it, e);
        cJSON_Delete(j);
        if (rc || push_item(&s, &cap, &it, path, e)) {
            hp_qa_free(&s);
            return -1;
        }
    }
    if (s.n == 0) return hp_errf(e, "%s: no records", path);
    *out = s;
    return 0;
}

int hp_qa_load_jsonl(const char *path, hp_qa_set *out, hp_err *e) {
    char *buf;
    size_t len;
    if (hp_read_file(path, &buf, &len, e)) return -1;
    int rc = load_jsonl_buf(path, buf, len, out, e);
    free(buf);
    return rc;
}

/* ---- TriviaQA ------------------------------------------------------------------------------ */

static int triviaqa_from_json(const char *path, const cJSON *root, hp_qa_set *out, hp_err *e) {
    const cJSON *data = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "Data") : NULL;
    if (!data) return hp_errf(e, "%s: not TriviaQA JSON (no top-level \"Data\")", path);
    if (!cJSON_IsArray(data)) return hp_errf(e, "%s: \"Data\" is not an array", path);
    hp_qa_set s = {0};
    int cap = 0, idx = 0;
    char where[1100];
    for (const cJSON *r = data->child; r; r = r->next, idx++) {
        snprintf(where, sizeof where, "%s: Data[%d]", path, idx);
        hp_qa_item it = {0};
        int acap = 0;
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(r, "Question");
        const cJSON *qid = cJSON_GetObjectItemCaseSensitive(r, "QuestionId");
        const cJSON *ans = cJSON_GetObjectItemCaseSensitive(r, "Answer");
        if (!cJSON_IsObject(r)) {
            hp_errf(e, "%s: not an object", where);
            goto fail;
        }
        if (!cJSON_IsString(q) || !q->valuestring[0]) {
            hp_errf(e, "%s: missing or empty \"Question\"", where);
            goto fail;
        }
        if (!cJSON_IsObject(ans)) {
            hp_errf(e, "%s: no \"Answer\" object (a test file without answers?)", where);
            goto fail;
        }
        if (dup_checked(q->valuestring, &it.question, where, "Question", e)) goto fail;
        if (cJSON_IsString(qid)) {
            if (dup_checked(qid->valuestring, &it.id, where, "QuestionId", e)) goto fail;
        } else {
            char tmp[32];
            snprintf(tmp, sizeof tmp, "%d", idx);
            if (!(it.id = strdup(tmp))) {
                hp_errf(e, "%s: out of memory", where);
                goto fail;
            }
        }
        const cJSON *val = cJSON_GetObjectItemCaseSensitive(ans, "Value");
        const cJSON *aliases = cJSON_GetObjectItemCaseSensitive(ans, "Aliases");
        if (val && !cJSON_IsString(val)) {
            hp_errf(e, "%s: \"Answer\".\"Value\" is not a string", where);
            goto fail;
        }
        if (val && val->valuestring[0] && add_answer(&it, &acap, val->valuestring, where, e))
            goto fail;
        if (aliases && !cJSON_IsArray(aliases)) {
            hp_errf(e, "%s: \"Answer\".\"Aliases\" is not an array", where);
            goto fail;
        }
        int k = 0;
        for (const cJSON *a = aliases ? aliases->child : NULL; a; a = a->next, k++) {
            if (!cJSON_IsString(a)) {
                hp_errf(e, "%s: \"Answer\".\"Aliases\"[%d] is not a string", where, k);
                goto fail;
            }
            if (a->valuestring[0] && add_answer(&it, &acap, a->valuestring, where, e)) goto fail;
        }
        if (it.n_answers == 0) {
            hp_errf(e, "%s: \"Answer\" has no Value and no Aliases", where);
            goto fail;
        }
        it.kind = HP_QA_UNKNOWN;
        if (push_item(&s, &cap, &it, path, e)) goto fail_set;
        continue;
    fail:
        item_free(&it);
    fail_set:
        hp_qa_free(&s);
        return -1;
    }
    if (s.n == 0) return hp_errf(e, "%s: \"Data\" is empty", path);
    *out = s;
    return 0;
}

static int malformed(const char *path, const char *buf, size_t off, hp_err *e) {
    size_t col0 = off;
    while (col0 > 0 && buf[col0 - 1] != '\n') col0--;
    return hp_errf(e, "%s:%ld: malformed JSON at column %zu", path, line_of(buf, off),
                   off - col0 + 1);
}

int hp_qa_load_triviaqa(const char *path, hp_qa_set *out, hp_err *e) {
    char *buf;
    size_t len, off = 0;
    if (hp_read_file(path, &buf, &len, e)) return -1;
    size_t skip = len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3) ? 3 : 0;
    cJSON *root = parse_exact(buf + skip, len - skip, &off);
    if (!root) {
        int rc = malformed(path, buf, skip + off, e);
        free(buf);
        return rc;
    }
    free(buf);
    int rc = triviaqa_from_json(path, root, out, e);
    cJSON_Delete(root);
    return rc;
}

int hp_qa_load(const char *path, hp_qa_set *out, hp_err *e) {
    char *buf;
    size_t len, off = 0;
    if (hp_read_file(path, &buf, &len, e)) return -1;
    size_t skip = len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3) ? 3 : 0;
    /* One JSON document holding "Data" is TriviaQA; a JSONL file with several lines fails
     * parse_exact at the second record, and a one-line JSONL file has no "Data". */
    cJSON *root = parse_exact(buf + skip, len - skip, &off);
    int rc;
    if (root && cJSON_IsObject(root) && cJSON_GetObjectItemCaseSensitive(root, "Data")) {
        free(buf);
        rc = triviaqa_from_json(path, root, out, e);
    } else {
        rc = load_jsonl_buf(path, buf, len, out, e);
        free(buf);
    }
    cJSON_Delete(root);
    return rc;
}

/* ---- word lists ---------------------------------------------------------------------------- */

void hp_wordlist_free(hp_wordlist *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->words[i]);
    free(w->words);
    w->words = NULL;
    w->n = 0;
}

int hp_wordlist_load(const char *path, hp_wordlist *out, hp_err *e) {
    char *buf;
    size_t len;
    if (hp_read_file(path, &buf, &len, e)) return -1;
    hp_wordlist w = {0};
    int cap = 0;
    long line = 0;
    size_t pos = len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3) ? 3 : 0;
    while (pos < len) {
        line++;
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        size_t a = pos, b = end;
        pos = nl ? end + 1 : len;
        /* Check the raw line, comments included: a bad byte means a wrong encoding, which
         * would garble the words around it too. */
        long bad = hp_utf8_invalid_at(buf + a, b - a);
        if (bad >= 0) {
            hp_errf(e, "%s:%ld: invalid UTF-8 at column %ld", path, line, bad + 1);
            goto fail;
        }
        if (memchr(buf + a, 0, b - a)) {
            hp_errf(e, "%s:%ld: NUL byte in line", path, line);
            goto fail;
        }
        while (a < b && is_space(buf[a])) a++;
        while (b > a && is_space(buf[b - 1])) b--;
        if (a == b || buf[a] == '#') continue;
        if (grow((void **)&w.words, &cap, w.n, sizeof(char *)) ||
            !(w.words[w.n] = strndup(buf + a, b - a))) {
            hp_errf(e, "%s:%ld: out of memory", path, line);
            goto fail;
        }
        w.n++;
    }
    free(buf);
    if (w.n == 0) return hp_errf(e, "%s: no words (only blank lines and comments)", path);
    *out = w;
    return 0;
fail:
    free(buf);
    hp_wordlist_free(&w);
    return -1;
}
