/* toxic_prompts.c: RealToxicityPrompts JSONL and TET JSON readers (toxic_prompts.h), via cJSON;
 * every kept string is checked for UTF-8 (cJSON does not). */
#include "toxic_prompts.h"
#include "dataset.h"
#include "fileio.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

const char *const hp_tox_attr[HP_TOX_N_ATTR] = {"toxicity", "severe_toxicity", "profanity",
                                                "sexually_explicit", "identity_attack", "flirtation",
                                                "threat", "insult"};

static void item_free(hp_tox_item *it) {
    free(it->id);
    free(it->prompt);
    free(it->continuation);
    for (int i = 0; i < it->n_metrics; i++) free(it->metrics[i]);
    free(it->metrics);
    memset(it, 0, sizeof *it);
}

void hp_tox_free(hp_tox_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) item_free(&s->items[i]);
    free(s->items);
    memset(s, 0, sizeof *s);
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static int push(hp_tox_set *s, int *cap, hp_tox_item *it, const char *path, hp_err *e) {
    if (s->n == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        void *p = *cap > (1 << 27) ? NULL : realloc(s->items, (size_t)nc * sizeof *it);
        if (!p) {
            item_free(it);
            return hp_errf(e, "%s: out of memory", path);
        }
        s->items = p;
        *cap = nc;
    }
    s->items[s->n++] = *it;
    return 0;
}

/* A required, non-empty, valid UTF-8 string field (empty allowed when allow_empty). */
static int get_string(const cJSON *o, const char *key, char **out, int allow_empty, const char *where,
                      hp_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return hp_errf(e, "%s: missing \"%s\"", where, key);
    if (!cJSON_IsString(v)) return hp_errf(e, "%s: \"%s\" is not a string", where, key);
    size_t n = strlen(v->valuestring);
    if (!n && !allow_empty) return hp_errf(e, "%s: \"%s\" is empty", where, key);
    long bad = hp_utf8_invalid_at(v->valuestring, n);
    if (bad >= 0) return hp_errf(e, "%s: \"%s\" has invalid UTF-8 at byte %ld", where, key, bad);
    if (!(*out = strdup(v->valuestring))) return hp_errf(e, "%s: out of memory", where);
    return 0;
}

/* {"text", eight scores}: text required; each score a number in [0, 1], null or absent (NaN). */
static int text_and_scores(const cJSON *o, const char *name, char **text, float *scores, const char *where,
                           hp_err *e) {
    char w[1200];
    snprintf(w, sizeof w, "%s: \"%s\"", where, name);
    if (!cJSON_IsObject(o)) return hp_errf(e, "%s is not an object", w);
    if (get_string(o, "text", text, 1, w, e)) return -1;
    for (int k = 0; k < HP_TOX_N_ATTR; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, hp_tox_attr[k]);
        scores[k] = NAN;
        if (!v || cJSON_IsNull(v)) continue;
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1))
            return hp_errf(e, "%s: \"%s\" is not a number in [0, 1] or null", w, hp_tox_attr[k]);
        scores[k] = (float)v->valuedouble;
    }
    return 0;
}

static int whole_number(const cJSON *v, long long *out) {
    if (!cJSON_IsNumber(v) || !(fabs(v->valuedouble) < 9e15) || v->valuedouble != floor(v->valuedouble))
        return 0;
    *out = (long long)v->valuedouble;
    return 1;
}

static int rtp_record(const cJSON *j, const char *where, long line, hp_tox_item *it, hp_err *e) {
    memset(it, 0, sizeof *it);
    it->line = line;
    for (int k = 0; k < HP_TOX_N_ATTR; k++) it->prompt_score[k] = it->cont_score[k] = NAN;
    if (!cJSON_IsObject(j)) return hp_errf(e, "%s: expected a JSON object", where);
    char *fname = NULL;
    if (get_string(j, "filename", &fname, 0, where, e)) return -1;
    long long b, en;
    const cJSON *vb = cJSON_GetObjectItemCaseSensitive(j, "begin");
    const cJSON *ve = cJSON_GetObjectItemCaseSensitive(j, "end");
    if (!vb || !whole_number(vb, &b) || !ve || !whole_number(ve, &en) || b < 0 || en < b) {
        free(fname);
        return hp_errf(e, "%s: \"begin\" and \"end\" must be whole numbers, 0 <= begin <= end", where);
    }
    char id[1400];
    snprintf(id, sizeof id, "%s:%lld-%lld", fname, b, en);
    free(fname);
    if (!(it->id = strdup(id))) return hp_errf(e, "%s: out of memory", where);
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "challenging");
    if (!ch) return hp_errf(e, "%s: missing \"challenging\"", where);
    if (!cJSON_IsBool(ch)) return hp_errf(e, "%s: \"challenging\" is not true or false", where);
    it->challenging = cJSON_IsTrue(ch);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prompt");
    if (!p) return hp_errf(e, "%s: missing \"prompt\"", where);
    if (text_and_scores(p, "prompt", &it->prompt, it->prompt_score, where, e)) return -1;
    if (!it->prompt[0]) return hp_errf(e, "%s: \"prompt\".\"text\" is empty", where);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "continuation");
    if (c && !cJSON_IsNull(c) && text_and_scores(c, "continuation", &it->continuation, it->cont_score, where, e))
        return -1;
    return 0;
}

static int keep(const hp_tox_item *it, const hp_tox_filter *f) {
    if (!f) return 1;
    if (f->challenging_only && !it->challenging) return 0;
    if (f->min_prompt_toxicity >= 0 && !(it->prompt_score[0] >= f->min_prompt_toxicity)) return 0;
    return 1;
}

int hp_rtp_load(const char *path, const hp_tox_filter *f, hp_tox_set *out, hp_err *e) {
    char *buf;
    size_t len;
    memset(out, 0, sizeof *out);
    if (hp_read_file(path, &buf, &len, e)) return -1;
    hp_tox_set s = {0};
    s.format = HP_TOX_RTP;
    int cap = 0, rc = 0;
    long line = 0;
    size_t pos = len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3) ? 3 : 0;
    while (pos < len && !rc) {
        line++;
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len, a = pos, b = end;
        pos = nl ? end + 1 : len;
        while (a < b && is_space(buf[a])) a++;
        while (b > a && is_space(buf[b - 1])) b--;
        if (a == b) continue;
        char where[1100];
        snprintf(where, sizeof where, "%s:%ld", path, line);
        if (memchr(buf + a, 0, b - a)) {
            rc = hp_errf(e, "%s: NUL byte in line", where);
            break;
        }
        const char *stop = NULL;
        cJSON *j = cJSON_ParseWithLengthOpts(buf + a, b - a, &stop, 0);
        if (!j || (size_t)(stop - (buf + a)) != b - a) {
            size_t col = stop && stop >= buf + a ? (size_t)(stop - (buf + a)) + 1 : 1;
            cJSON_Delete(j);
            rc = hp_errf(e, "%s: malformed JSON at column %zu", where, col);
            break;
        }
        hp_tox_item it;
        rc = rtp_record(j, where, line, &it, e);
        cJSON_Delete(j);
        s.n_read++;
        if (rc) item_free(&it);
        else if (keep(&it, f)) rc = push(&s, &cap, &it, path, e);
        else item_free(&it);
    }
    free(buf);
    if (!rc && s.n_read == 0) rc = hp_errf(e, "%s: no records", path);
    if (!rc && s.n == 0) rc = hp_errf(e, "%s: none of %ld records passes the filter", path, s.n_read);
    if (rc) {
        hp_tox_free(&s);
        return -1;
    }
    *out = s;
    return 0;
}

/* Start offsets of the top-level array's elements (a JSON array that cJSON has already accepted),
 * so that an error in element i can name its line. */
static size_t *element_offsets(const char *buf, size_t len, size_t start, int n) {
    size_t *off = calloc((size_t)n + 1, sizeof *off);
    if (!off) return NULL;
    int depth = 0, k = 0, want = 0;
    for (size_t i = start; i < len && k < n; i++) {
        char c = buf[i];
        if (is_space(c)) continue;
        if (depth == 1 && want) {
            off[k++] = i;
            want = 0;
        }
        if (c == '"') {
            for (i++; i < len && buf[i] != '"'; i++)
                if (buf[i] == '\\') i++;
        } else if (c == '[' || c == '{') {
            if (++depth == 1) want = 1;
        } else if (c == ']' || c == '}') {
            depth--;
        } else if (c == ',' && depth == 1) {
            want = 1;
        }
    }
    return off;
}

static long line_of(const char *buf, size_t off) {
    long line = 1;
    for (size_t i = 0; i < off; i++) line += buf[i] == '\n';
    return line;
}

int hp_tet_load(const char *path, const hp_tox_filter *f, hp_tox_set *out, hp_err *e) {
    memset(out, 0, sizeof *out);
    if (f && (f->challenging_only || f->min_prompt_toxicity >= 0))
        return hp_errf(e, "%s: TET records have no \"challenging\" flag or prompt toxicity to filter on", path);
    char *buf;
    size_t len;
    if (hp_read_file(path, &buf, &len, e)) return -1;
    size_t skip = len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3) ? 3 : 0;
    const char *stop = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf + skip, len - skip, &stop, 0);
    size_t end = stop ? (size_t)(stop - buf) : skip;
    while (root && end < len && is_space(buf[end])) end++;
    if (!root || end < len) {
        size_t c0 = end;
        while (c0 > 0 && buf[c0 - 1] != '\n') c0--;
        long line = line_of(buf, end);
        cJSON_Delete(root);
        free(buf);
        return hp_errf(e, "%s:%ld: malformed JSON at column %zu", path, line, end - c0 + 1);
    }
    if (!cJSON_IsArray(root)) {
        cJSON_Delete(root);
        free(buf);
        return hp_errf(e, "%s: not TET JSON (expected an array of records; convert the parquet first)", path);
    }
    int n = cJSON_GetArraySize(root);
    size_t *offs = element_offsets(buf, len, skip, n);
    hp_tox_set s = {0};
    s.format = HP_TOX_TET;
    int cap = 0, rc = offs ? 0 : hp_errf(e, "%s: out of memory", path);
    int i = 0;
    for (const cJSON *r = root->child; r && !rc; r = r->next, i++) {
        hp_tox_item it;
        memset(&it, 0, sizeof it);
        it.line = line_of(buf, offs[i]);
        for (int k = 0; k < HP_TOX_N_ATTR; k++) it.prompt_score[k] = it.cont_score[k] = NAN;
        char where[1200];
        snprintf(where, sizeof where, "%s:%ld: record %d", path, it.line, i);
        s.n_read++;
        if (!cJSON_IsObject(r)) {
            rc = hp_errf(e, "%s: expected a JSON object", where);
        } else if (!(rc = get_string(r, "conversation_id", &it.id, 0, where, e)) &&
                   !(rc = get_string(r, "query", &it.prompt, 0, where, e))) {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(r, "metrics");
            if (m && !cJSON_IsNull(m)) {
                if (!cJSON_IsArray(m)) {
                    rc = hp_errf(e, "%s: \"metrics\" is not an array", where);
                } else {
                    int nm = cJSON_GetArraySize(m), k = 0;
                    it.metrics = calloc((size_t)nm + 1, sizeof *it.metrics);
                    if (!it.metrics) rc = hp_errf(e, "%s: out of memory", where);
                    for (const cJSON *x = m->child; x && !rc; x = x->next, k++) {
                        if (!cJSON_IsString(x)) rc = hp_errf(e, "%s: \"metrics\"[%d] is not a string", where, k);
                        else if (!(it.metrics[k] = strdup(x->valuestring))) rc = hp_errf(e, "%s: out of memory", where);
                        else it.n_metrics = k + 1;
                    }
                }
            }
        }
        if (rc) item_free(&it);
        else rc = push(&s, &cap, &it, path, e);
    }
    free(offs);
    cJSON_Delete(root);
    free(buf);
    if (!rc && s.n == 0) rc = hp_errf(e, "%s: no records", path);
    if (rc) {
        hp_tox_free(&s);
        return -1;
    }
    *out = s;
    return 0;
}

int hp_tox_load(const char *path, const hp_tox_filter *f, hp_tox_set *out, hp_err *e) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return hp_errf(e, "%s: cannot open", path);
    int c;
    do c = fgetc(fp);
    while (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0xef || c == 0xbb || c == 0xbf);
    fclose(fp);
    return c == '[' ? hp_tet_load(path, f, out, e) : hp_rtp_load(path, f, out, e);
}
