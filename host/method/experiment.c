/* experiment.c: QA prompts, head sets and random controls. */
#include "experiment.h"

#include "chat.h"
#include "nvtx.h"

#include <stdio.h>
#include <stdlib.h>

int hp_prompts_add_user(hp_prompts *out, const hp_model *m, const char *text, int chat, hp_err *e) {
    if (!chat || m->chat == HP_CHAT_NONE) return hp_prompts_add_text(out, m, text, 1, e);
    char *t = hp_chat_format(m, m->chat, NULL, text);
    int rc = t ? hp_prompts_add_text(out, m, t, 0, e) : hp_errf(e, "out of memory");
    free(t);
    return rc;
}

int hp_qa_prompts(const hp_model *m, const hp_qa_set *s, int chat, int cap, const char *src,
                  hp_prompts *out, hp_err *e) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < s->n; i++) {
        char *q = NULL;
        if (asprintf(&q, HP_QA_PROMPT, s->items[i].question) < 0) return hp_errf(e, "out of memory");
        int rc = hp_prompts_add_user(out, m, q, chat, e);
        free(q);
        if (!rc && cap > 0 && out->len[out->B - 1] > cap) {
            char where[1200];
            const hp_qa_item *it = &s->items[i];
            if (it->line > 0)
                snprintf(where, sizeof where, "%s:%ld: record id '%.64s'", src, it->line, it->id);
            else snprintf(where, sizeof where, "%s: record %d, id '%.64s'", src, i, it->id);
            rc = hp_prompt_fits(out->len[out->B - 1], cap, where, e);
        }
        if (rc) {
            hp_prompts_free(out);
            return -1;
        }
    }
    return 0;
}

int hp_reps_capture_qa(hp_model *m, const char *data, int limit, int chat, int cap, hp_positions pos, int batch,
                       int progress, hp_reps *r, hp_err *e) {
    hp_qa_set set;
    hp_prompts p;
    if (hp_qa_load(data, &set, e)) return -1;
    int n_all = set.n;
    if (limit > 0 && limit < set.n) set.n = limit;
    int rc = hp_qa_prompts(m, &set, chat, cap, data, &p, e);
    set.n = n_all; /* hp_qa_free frees every item */
    hp_qa_free(&set);
    if (rc) return -1;
    rc = hp_reps_capture(m, &p, pos, batch, progress, r, e);
    hp_prompts_free(&p);
    return rc ? -1 : 0;
}

int hp_headset_top(const int (*order)[2], int n_order, int k, hp_headset *out, hp_err *e) {
    if (k > n_order) return hp_errf(e, "asked for the top %d heads of a ranking of %d", k, n_order);
    out->n = k;
    out->lh = malloc(sizeof(int[2]) * (size_t)(k ? k : 1));
    if (!out->lh) return hp_errf(e, "out of memory");
    memcpy(out->lh, order, sizeof(int[2]) * (size_t)k);
    return 0;
}

uint64_t hp_rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int rng_below(uint64_t *s, int n) { return (int)(hp_rng_next(s) % (uint64_t)n); }

int hp_headset_random(const hp_headset *sel, int L, int H, uint64_t *rng, hp_headset *out,
                      int *short_layers, hp_err *e) {
    unsigned char *used = calloc((size_t)L * H, 1);
    int *count = calloc((size_t)L, sizeof(int)), *cand = malloc(sizeof(int) * (size_t)L * H);
    out->n = 0;
    out->lh = malloc(sizeof(int[2]) * (size_t)(sel->n ? sel->n : 1));
    if (!used || !count || !cand || !out->lh) {
        free(used);
        free(count);
        free(cand);
        free(out->lh);
        return hp_errf(e, "out of memory");
    }
    for (int i = 0; i < sel->n; i++) {
        used[sel->lh[i][0] * H + sel->lh[i][1]] = 1;
        count[sel->lh[i][0]]++;
    }
    int missing = 0;
    *short_layers = 0;
    for (int l = 0; l < L; l++) {
        int nc = 0;
        for (int h = 0; h < H; h++)
            if (!used[l * H + h]) cand[nc++] = h;
        int take = count[l] < nc ? count[l] : nc;
        if (take < count[l]) {
            missing += count[l] - take;
            (*short_layers)++;
        }
        for (int i = 0; i < take; i++) { /* partial Fisher-Yates */
            int j = i + rng_below(rng, nc - i), t = cand[i];
            cand[i] = cand[j];
            cand[j] = t;
            out->lh[out->n][0] = l;
            out->lh[out->n++][1] = cand[i];
        }
    }
    for (int l = 0; l < L; l++)
        for (int i = 0; i < out->n; i++)
            if (out->lh[i][0] == l) used[l * H + out->lh[i][1]] = 1;
    while (missing > 0) { /* fall back to any unused head */
        int nc = 0;
        for (int i = 0; i < L * H; i++)
            if (!used[i]) cand[nc++] = i;
        if (nc == 0) break;
        int pick = cand[rng_below(rng, nc)];
        used[pick] = 1;
        out->lh[out->n][0] = pick / H;
        out->lh[out->n++][1] = pick % H;
        missing--;
    }
    free(used);
    free(count);
    free(cand);
    return 0;
}

void hp_headset_free(hp_headset *h) {
    free(h->lh);
    h->lh = NULL;
    h->n = 0;
}

int hp_headset_apply(hp_model *m, const hp_headset *h, float alpha, hp_err *e) {
    HP_NVTX_PUSH("edit");
    hp_model_clear_edits(m);
    int rc = 0;
    for (int i = 0; i < h->n && !rc; i++) rc = hp_model_edit(m, h->lh[i][0], h->lh[i][1], alpha, e);
    HP_NVTX_POP();
    return rc;
}

char *hp_headset_str(const hp_headset *h) {
    size_t cap = (size_t)h->n * 12 + 1;
    char *s = malloc(cap);
    if (!s) return NULL;
    s[0] = 0;
    size_t at = 0;
    for (int i = 0; i < h->n; i++)
        at += (size_t)snprintf(s + at, cap - at, "%s%d.%d", i ? "," : "", h->lh[i][0], h->lh[i][1]);
    return s;
}
