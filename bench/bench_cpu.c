/* bench_cpu.c: end-to-end CPU throughput of the decoder: prefill tokens/s for one prompt of 64,
 * 256 and 512 tokens (logits for the last row only) and batch-1 decode tokens/s (64 single-token
 * steps after a 64-token prefill, logits every step), each the median of several timed repeats
 * after a warm-up. Prints a table, the achieved GFLOP/s, and one JSON line starting with
 * {"bench":"cpu" for scripts (bench/run_cpu_bench.sh).
 *
 *   build/cpu/bench/bench_cpu [MODEL] [--reps N]   MODEL defaults to the SmolLM2-135M Q4_1 GGUF
 *
 * FLOP count: 2 x (non-embedding matrix parameters) per token, i.e. the q/k/v/o and gate/up/down
 * products, plus 2·V·D per logit row for the lm_head. Attention's QKᵀ and AV products, norms,
 * RoPE and activations are not counted, so GFLOP/s is a lower bound that drifts lower as T grows.
 * Token ids are uniform in [0, V) from a fixed seed: speed does not depend on which ids. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "metrics.h"
#include "cli.h"
#include "model.h"
#include "progress.h"

#define DEFAULT_MODEL "models/SmolLM2-135M-Instruct.Q4_1.gguf"
#define SEED 20250101u
#define MAX_PREFILL 8
static int N_PREFILL = 3;
static int prefill_T[MAX_PREFILL] = {64, 256, 512};
#define DECODE_PROMPT 64
#define DECODE_STEPS 64

/* splitmix-style 32-bit generator: fixed seed, same ids on every run and machine. */
static uint32_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

/* Median of n samples (numpy's linear percentile, host/eval/metrics.c). */
static double median(double *v, int n) {
    double m = 0;
    hp_percentile(v, n, 50.0, &m);
    return m;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Multiply-accumulates per token in the decoder's weight matrices (embedding lookup excluded). */
static double layer_macs(const hp_config *c) {
    double Q = (double)c->H * c->Dh, KVD = (double)c->KV * c->Dh;
    return c->L * ((double)c->D * Q * 2 + (double)c->D * KVD * 2 + 3.0 * c->D * c->F);
}

/* One prefill of T tokens in slot 0 at positions 0..T-1, logits of the last row. */
static int prefill(hp_runtime *rt, const int32_t *ids, int T, int32_t *seq, int32_t *pos,
                   float *logits, hp_err *e) {
    for (int t = 0; t < T; t++) {
        seq[t] = 0;
        pos[t] = t;
    }
    int32_t last = T - 1;
    hp_fwd f = {.T = T, .ids = ids, .seq = seq, .pos = pos, .n_logits = 1, .logit_rows = &last,
                .logits_out = logits};
    return hp_forward(rt, &f, e);
}

/* DECODE_STEPS greedy steps after a DECODE_PROMPT prefill; returns the seconds of the steps only. */
static int decode(hp_runtime *rt, const int32_t *ids, int32_t *seq, int32_t *pos, float *logits,
                  int V, double *secs, hp_err *e) {
    if (prefill(rt, ids, DECODE_PROMPT, seq, pos, logits, e)) return -1;
    int32_t tok = argmax(logits, V), row = 0, s = 0;
    double t0 = hp_now();
    for (int i = 0; i < DECODE_STEPS; i++) {
        int32_t p = DECODE_PROMPT + i;
        hp_fwd f = {.T = 1, .ids = &tok, .seq = &s, .pos = &p, .n_logits = 1, .logit_rows = &row,
                    .logits_out = logits};
        if (hp_forward(rt, &f, e)) return -1;
        tok = argmax(logits, V);
    }
    *secs = hp_now() - t0;
    return 0;
}

/* path as a JSON string body: quotes, backslashes and control bytes escaped. */
static void json_str(const char *s) {
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 0x20) printf("\\u%04x", ch);
        else putchar(ch);
    }
}

static void loadavg(double la[3]) {
    la[0] = la[1] = la[2] = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return;
    if (fscanf(f, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3) la[0] = la[1] = la[2] = -1;
    fclose(f);
}

static int usage(void) {
    fprintf(stderr,
            "usage: bench_cpu [MODEL] [--reps N] [--prefill 64,256,512] [--warmup W] [--weights-f32]\n"
            "  MODEL default %s, N default 5 timed repeats per test; --prefill: the prompt\n"
            "  lengths (at most 8, each <= 4096); --warmup W: W untimed 64-token prefills before the\n"
            "  first test instead of one untimed run before each test; --weights-f32: weights\n"
            "  converted to float32 (default: GGUF block types kept, as ./headpursuit)\n",
            DEFAULT_MODEL);
    return 2;
}

int main(int argc, char **argv) {
    hp_cpu_thread_policy(argv); /* the same thread policy as ./headpursuit */
    const char *path = DEFAULT_MODEL;
    int reps = 5, warmup = -1, no_decode = 0; /* warmup -1: one untimed run before each test */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--weights-f32")) {
            hp_cli_weights_f32 = 1;
        } else if (!strcmp(argv[i], "--prefill") && i + 1 < argc) {
            char *p = argv[++i], *end;
            for (N_PREFILL = 0; *p && N_PREFILL < MAX_PREFILL; p = *end ? end + 1 : end) {
                long v = strtol(p, &end, 10);
                if (end == p || v < 1 || v > 4096 || (*end && *end != ',')) return usage();
                prefill_T[N_PREFILL++] = (int)v;
            }
            if (*p || N_PREFILL == 0) return usage();
        } else if (!strcmp(argv[i], "--no-decode")) {
            no_decode = 1;
        } else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) {
            warmup = atoi(argv[++i]);
            if (warmup < 0 || warmup > 100) return usage();
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
            if (reps < 1 || reps > 1000) return usage();
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            return usage();
        } else if (argv[i][0] == '-') {
            return usage();
        } else {
            path = argv[i];
        }
    }

    hp_err e = {0};
    hp_model *m = hp_cli_open(path, "cpu", 0, &e);
    if (!m) return hp_cli_fail(&e);
    const hp_config *c = &m->cfg;
    int threads = omp_get_max_threads();
    int Tmax = DECODE_PROMPT;
    for (int k = 0; k < N_PREFILL; k++)
        if (prefill_T[k] > Tmax) Tmax = prefill_T[k];
    int Tcap = Tmax > DECODE_PROMPT + DECODE_STEPS ? Tmax : DECODE_PROMPT + DECODE_STEPS;
    hp_runtime *rt = hp_runtime_create(m, 1, Tcap, Tmax, 0, &e);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)Tmax), *seq = malloc(sizeof(int32_t) * (size_t)Tmax);
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)Tmax);
    float *logits = malloc(sizeof(float) * (size_t)c->V);
    double *t = malloc(sizeof(double) * (size_t)reps);
    int rc = 1;
    if (!rt) goto out;
    if (!ids || !seq || !pos || !logits || !t) {
        hp_errf(&e, "out of memory");
        goto out;
    }
    uint64_t s = SEED;
    for (int i = 0; i < Tmax; i++) ids[i] = (int32_t)(rng_next(&s) % (uint32_t)c->V);

    double macs_tok = layer_macs(c), macs_row = (double)c->V * c->D;
    double la0[3], la1[3];
    loadavg(la0);
    printf("bench_cpu: %s\n", path);
    printf("model: %s, L=%d D=%d H=%d KV=%d Dh=%d F=%d V=%d%s, %.1fM parameters, %.1f MiB of weights (%s)\n",
           c->arch_name, c->L, c->D, c->H, c->KV, c->Dh, c->F, c->V,
           c->tie_embeddings ? " (tied lm_head)" : "", m->n_params / 1e6, m->wbytes / 1048576.0,
           m->wdt ? "GGUF block types kept" : "float32");
    printf("backend: %s; OpenMP threads: %d; seed %u; %d timed repeats after 1 warm-up, median\n",
           m->be->desc, threads, SEED, reps);
    printf("FLOP count: 2 x %.2fM non-embedding matrix params per token + 2*V*D = %.2f MFLOP per "
           "logit row (attention QK/AV not counted)\n", macs_tok / 1e6, 2 * macs_row / 1e6);
    printf("load average at start: %.2f %.2f %.2f\n\n", la0[0], la0[1], la0[2]);

    for (int w = 0; w < warmup; w++)
        if (prefill(rt, ids, DECODE_PROMPT, seq, pos, logits, &e)) goto out;
    int r0 = warmup >= 0 ? 0 : -1; /* first repeat index: -1 is the untimed one */
    double pp_tok_s[MAX_PREFILL], pp_ms[MAX_PREFILL], pp_gf[MAX_PREFILL];
    printf("%-24s %10s %12s %10s\n", "test", "median ms", "tokens/s", "GFLOP/s");
    for (int k = 0; k < N_PREFILL; k++) {
        int T = prefill_T[k];
        for (int r = r0; r < reps; r++) { /* r = -1: warm-up, not timed */
            double t0 = hp_now();
            if (prefill(rt, ids, T, seq, pos, logits, &e)) goto out;
            if (r >= 0) t[r] = hp_now() - t0;
        }
        double med = median(t, reps);
        pp_ms[k] = med * 1e3;
        pp_tok_s[k] = T / med;
        pp_gf[k] = 2 * (macs_tok * T + macs_row) / med / 1e9;
        char name[32];
        snprintf(name, sizeof name, "prefill pp%d", T);
        printf("%-24s %10.1f %12.1f %10.2f\n", name, pp_ms[k], pp_tok_s[k], pp_gf[k]);
        fflush(stdout);
    }

    for (int r = r0; r < reps && !no_decode; r++) {
        double secs;
        if (decode(rt, ids, seq, pos, logits, c->V, &secs, &e)) goto out;
        if (r >= 0) t[r] = secs;
    }
    double tg_med = no_decode ? 0 : median(t, reps);
    double tg_tok_s = DECODE_STEPS / tg_med;
    double tg_gf = 2 * (macs_tok + macs_row) * DECODE_STEPS / tg_med / 1e9;
    /* Bytes of weights held, per decode step: every matrix is read once (an upper bound where an
     * untied embedding table, of which only rows are read, is counted). */
    double tg_gbs = (double)m->wbytes * DECODE_STEPS / tg_med / 1e9;
    char name[32];
    snprintf(name, sizeof name, "decode tg%d (@%d)", DECODE_STEPS, DECODE_PROMPT);
    if (!no_decode)
        printf("%-24s %10.1f %12.1f %10.2f   (%.1f GB/s of weights)\n", name, tg_med * 1e3,
               tg_tok_s, tg_gf, tg_gbs);
    loadavg(la1);
    printf("\nload average at end: %.2f %.2f %.2f\n", la1[0], la1[1], la1[2]);

    printf("{\"bench\":\"cpu\",\"model\":\"");
    json_str(path);
    printf("\",\"threads\":%d,\"reps\":%d,\"seed\":%u,"
           "\"flop_count\":\"2*nonembed_matrix_params*T + 2*V*D*logit_rows\","
           "\"loadavg_start\":[%.2f,%.2f,%.2f],\"loadavg_end\":[%.2f,%.2f,%.2f],\"prefill\":[",
           threads, reps, SEED, la0[0], la0[1], la0[2], la1[0], la1[1], la1[2]);
    for (int k = 0; k < N_PREFILL; k++)
        printf("%s{\"T\":%d,\"ms\":%.3f,\"tok_s\":%.2f,\"gflops\":%.3f}", k ? "," : "", prefill_T[k],
               pp_ms[k], pp_tok_s[k], pp_gf[k]);
    if (no_decode) printf("],\"decode\":null}\n");
    else printf("],\"decode\":{\"prompt\":%d,\"steps\":%d,\"ms\":%.3f,\"tok_s\":%.2f,\"gflops\":%.3f,"
           "\"weight_gbs\":%.3f}}\n",
           DECODE_PROMPT, DECODE_STEPS, tg_med * 1e3, tg_tok_s, tg_gf, tg_gbs);
    rc = 0;
out:
    if (rc) hp_cli_fail(&e);
    free(t);
    free(logits);
    free(pos);
    free(seq);
    free(ids);
    hp_runtime_free(rt);
    hp_cli_close(m);
    return rc;
}
