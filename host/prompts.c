/* prompts.c: batches of token-id prompts and the prompt-length cap. */
#include "prompts.h"

#include "fileio.h"

#include <cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hp_prompts_free(hp_prompts *p) {
    for (int b = 0; b < p->B; b++) free(p->ids[b]);
    free(p->ids);
    free(p->len);
    memset(p, 0, sizeof *p);
}

int hp_prompts_add(hp_prompts *p, const int32_t *ids, int n, hp_err *e) {
    int32_t **ni = realloc(p->ids, sizeof(*ni) * (size_t)(p->B + 1));
    if (!ni) return hp_errf(e, "out of memory");
    p->ids = ni;
    int *nl = realloc(p->len, sizeof(*nl) * (size_t)(p->B + 1));
    if (!nl) return hp_errf(e, "out of memory");
    p->len = nl;
    p->ids[p->B] = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    if (!p->ids[p->B]) return hp_errf(e, "out of memory");
    if (n) memcpy(p->ids[p->B], ids, sizeof(int32_t) * (size_t)n);
    p->len[p->B++] = n;
    return 0;
}

int hp_prompts_add_csv(hp_prompts *p, const char *csv, hp_err *e) {
    int cap = 16, n = 0;
    int32_t *ids = malloc(sizeof(int32_t) * cap);
    const char *s = csv;
    while (ids && *s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX) {
            free(ids);
            return hp_errf(e, "--ids: '%s' is not a comma-separated list of token ids", csv);
        }
        if (n == cap) {
            int32_t *g = realloc(ids, sizeof(int32_t) * (cap *= 2));
            if (!g) break;
            ids = g;
        }
        ids[n++] = (int32_t)v;
        s = end;
        if (*s == ',') s++;
        else if (*s) {
            free(ids);
            return hp_errf(e, "--ids: unexpected '%c' in '%s'", *s, csv);
        }
    }
    if (!ids) return hp_errf(e, "out of memory");
    int rc = n ? hp_prompts_add(p, ids, n, e) : hp_errf(e, "--ids: empty list");
    free(ids);
    return rc;
}

int hp_prompts_from_json(hp_prompts *p, const char *path, hp_err *e) {
    cJSON *root = hp_read_json(path, e);
    if (!root) return -1;
    int rc = 0;
    if (!cJSON_IsArray(root) || cJSON_GetArraySize(root) == 0) {
        rc = hp_errf(e, "%s: expected a non-empty JSON list of token-id lists", path);
        goto out;
    }
    int bi = 0;
    for (cJSON *row = root->child; row; row = row->next, bi++) {
        int n = cJSON_GetArraySize(row);
        if (!cJSON_IsArray(row) || n == 0) {
            rc = hp_errf(e, "%s: entry %d is not a non-empty list of token ids", path, bi);
            goto out;
        }
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
        if (!ids) {
            rc = hp_errf(e, "out of memory");
            goto out;
        }
        int i = 0;
        for (cJSON *v = row->child; v; v = v->next, i++) {
            if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > INT32_MAX ||
                v->valuedouble != (double)(int32_t)v->valuedouble) {
                free(ids);
                rc = hp_errf(e, "%s: entry %d, item %d is not a token id", path, bi, i);
                goto out;
            }
            ids[i] = (int32_t)v->valuedouble;
        }
        rc = hp_prompts_add(p, ids, n, e);
        free(ids);
        if (rc) goto out;
    }
out:
    cJSON_Delete(root);
    return rc;
}

int hp_prompts_add_text(hp_prompts *p, const hp_model *m, const char *text, int add_special, hp_err *e) {
    if (!m->tok) return hp_errf(e, "%s: the model has no tokenizer (tokenizer.json): pass token ids", m->path);
    int32_t *ids;
    int n;
    if (hp_tok_encode(m->tok, text, strlen(text), add_special, &ids, &n, e)) return -1;
    int rc = n ? hp_prompts_add(p, ids, n, e) : hp_errf(e, "the text encodes to no tokens");
    free(ids);
    return rc;
}

int hp_prompt_cap(const hp_model *m, int max_prompt_tokens) {
    if (max_prompt_tokens > 0) return max_prompt_tokens;
    return m->cfg.max_pos > 0 ? m->cfg.max_pos : 0;
}

int hp_prompt_fits(int n, int cap, const char *where, hp_err *e) {
    if (cap <= 0 || n <= cap) return 0;
    return hp_errf(e,
                   "%s: the prompt is %d tokens, over the cap of %d (the model's context "
                   "length, or --max-prompt-tokens N)",
                   where, n, cap);
}

int hp_prompts_fit(const hp_prompts *p, int cap, const char *where, hp_err *e) {
    for (int b = 0; b < p->B; b++)
        if (cap > 0 && p->len[b] > cap) {
            char w[1100];
            if (p->B > 1) snprintf(w, sizeof w, "%s: entry %d", where, b);
            else snprintf(w, sizeof w, "%s", where);
            return hp_prompt_fits(p->len[b], cap, w, e);
        }
    return 0;
}
