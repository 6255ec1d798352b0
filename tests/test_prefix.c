/* test_prefix.c: the kept unedited prefill of an edit sweep (hp_prefix, host/model/decoder.c) gives
 * bit-identical results to the full prefill: the prefill's last-token logits (compared with
 * memcmp) and the greedy continuations, for several edit sets (none, one layer, several layers,
 * the first and the last layer), with and without a shared prompt prefix, on the tiny Llama
 * fixture and on the real SmolLM2 when present. A kept prefix reused for other prompts is
 * refused. Exit 0 pass, 1 fail. */
#include "model.h"
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fails, checks;

static void expect(int ok, const char *what, const char *model) {
    checks++;
    if (!ok) {
        fails++;
        printf("FAIL  %s: %s\n", model, what);
    }
}

/* Edit sets as (layer, head, alpha) lists; -1 ends a set. */
static int apply(hp_model *m, const int (*set)[2], float alpha, hp_err *e) {
    hp_model_clear_edits(m);
    for (int i = 0; set[i][0] >= 0; i++)
        if (hp_model_edit(m, set[i][0], set[i][1], alpha, e)) return -1;
    return 0;
}

static void run_model(const char *path, int shared_prefix) {
    hp_err e = {0};
    hp_backend *be = hp_backend_cpu_create(0, &e);
    hp_model *m = be ? hp_model_load(path, be, &e) : NULL;
    if (!m) {
        printf("FAIL  %s: %s\n", path, e.msg);
        fails++;
        if (be) be->destroy(be);
        return;
    }
    const hp_config *c = &m->cfg;
    int L = c->L, H = c->H, V = c->V;
    /* Prompts: 3 of different lengths; with shared_prefix their first 6 tokens agree. */
    enum { B = 3, NEW = 5 };
    int len[B] = {9, 13, 7};
    int32_t *ids[B];
    for (int b = 0; b < B; b++) {
        ids[b] = malloc(sizeof(int32_t) * (size_t)len[b]);
        for (int i = 0; i < len[b]; i++)
            ids[b][i] = (shared_prefix && i < 6) ? (int32_t)((i * 37 + 11) % V) : (int32_t)((b * 101 + i * 53 + 7) % V);
    }
    int sets[6][4][2] = {
        {{L - 1, 0}, {-1, 0}},                       /* the last layer: recorded while edited */
        {{-1, 0}},                                   /* unedited */
        {{L / 2, 1 % H}, {-1, 0}},                   /* one middle layer */
        {{L / 2, 0}, {L - 1, H - 1}, {L / 3, 0}, {-1, 0}}, /* several layers */
        {{0, 0}, {-1, 0}},                           /* layer 0: nothing to reuse */
        {{L > 2 ? 2 : 1, 0}, {-1, 0}},
    };
    int cand[8], nc = 0;
    for (int s = 0; s < 6; s++) {
        int low = L;
        for (int i = 0; sets[s][i][0] >= 0; i++)
            if (sets[s][i][0] < low) low = sets[s][i][0];
        cand[nc++] = low;
    }
    hp_prefix pre;
    hp_prefix_init(&pre, cand, nc, L);
    float *lf = malloc(sizeof(float) * B * (size_t)V), *lr = malloc(sizeof(float) * B * (size_t)V);
    char name[512];
    for (int s = 0; s < 6; s++) {
        int32_t *of[B], *orr[B];
        int nf[B], nr[B];
        snprintf(name, sizeof name, "%s%s, edit set %d", path, shared_prefix ? " (shared prefix)" : "", s);
        if (apply(m, (const int(*)[2])sets[s], -1.0f, &e) ||
            hp_generate_ex(m, B, (const int32_t *const *)ids, len, NULL, NEW, 1, of, nf, 0, NULL, lf, &e) ||
            hp_generate_ex(m, B, (const int32_t *const *)ids, len, NULL, NEW, 1, orr, nr, 0, &pre, lr, &e)) {
            printf("FAIL  %s: %s\n", name, e.msg);
            fails++;
            continue;
        }
        expect(!memcmp(lf, lr, sizeof(float) * B * (size_t)V), "prefill logits differ", name);
        for (int b = 0; b < B; b++) {
            expect(nf[b] == nr[b] && !memcmp(of[b], orr[b], sizeof(int32_t) * (size_t)nf[b]), "continuations differ",
                   name);
            free(of[b]);
            free(orr[b]);
        }
    }
    /* Other prompts with the same kept prefill: refused. */
    ids[0][len[0] - 1] = (ids[0][len[0] - 1] + 1) % V;
    int32_t *o2[B];
    int n2[B];
    hp_err e2 = {0};
    int rc = hp_generate_ex(m, B, (const int32_t *const *)ids, len, NULL, NEW, 1, o2, n2, 0, &pre, NULL, &e2);
    expect(rc != 0 && strstr(e2.msg, "other prompts"), "reuse for other prompts not refused", path);
    if (rc == 0)
        for (int b = 0; b < B; b++) free(o2[b]);
    printf("%s%s: kept layers", path, shared_prefix ? " (shared prefix)" : "");
    for (int i = 0; i < pre.n_layers; i++) printf(" %d", pre.layers[i]);
    printf(" of %d\n", L);
    hp_prefix_free(&pre);
    free(lf);
    free(lr);
    for (int b = 0; b < B; b++) free(ids[b]);
    hp_model_free(m);
    be->destroy(be);
}

int main(void) {
    run_model("tests/fixtures/tiny-llama", 0);
    run_model("tests/fixtures/tiny-llama", 1);
    const char *real = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    FILE *f = fopen(real, "rb");
    if (f) {
        fclose(f);
        run_model(real, 1);
    } else {
        printf("(SmolLM2 not present: tiny model only)\n");
    }
    printf("prefix reuse: %d checks, %d failed\n", checks, fails);
    return fails ? 1 : 0;
}
