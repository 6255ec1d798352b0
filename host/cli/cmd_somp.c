/* cmd_somp.c: `headpursuit somp`: Simultaneous Orthogonal Matching Pursuit (PAPER.md §3) of one
 * or many heads' signal matrices (.npy) against a dictionary (.npy), on the CPU. Writes each
 * head's ordered support, explained-variance curve and least-squares coefficients as JSON. */
#include "cli.h"
#include "commands.h"
#include "fileio.h"
#include "npy.h"
#include "progress.h"
#include "somp.h"

#include <cJSON.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: headpursuit somp --signals H.npy --dict D.npy -k K [--center]\n"
            "                        [--normalize-atoms] --out R.json\n"
            "\n"
            "Simultaneous Orthogonal Matching Pursuit (PAPER.md §3): for each head, k steps of\n"
            "choosing the dictionary row with the largest sum over samples of |<row, residual>|,\n"
            "then refitting all samples by least squares on the chosen rows.\n"
            "\n"
            "  --signals H.npy     float32/float64 [N, D] (one head) or [heads, N, D]\n"
            "  --dict D.npy       float32/float64 [V, D], one atom per row (e.g. unembedding rows)\n"
            "  -k, --k K          iterations (atoms per head); fewer are taken when the residual\n"
            "                     vanishes or every remaining atom is linearly dependent\n"
            "  --center           subtract each head's column mean of H first (default off)\n"
            "  --normalize-atoms  scale every nonzero atom to unit norm first (default off)\n"
            "  --out R.json       written atomically:\n"
            "                     {\"k\", \"center\", \"normalize_atoms\", \"heads\": [{\"support\":\n"
            "                     [atom ids in selection order], \"evr\": [EVR after each step],\n"
            "                     \"coef\": [N rows of k], \"h_norm2\": ||H||_F^2}]}\n"
            "  -h, --help         this text\n"
            "\n"
            "Threads: OMP_NUM_THREADS (heads run in parallel).\n");
}

static int fail(const hp_err *e) {
    fprintf(stderr, "headpursuit somp: %s\n", e->msg[0] ? e->msg : "failed");
    return 1;
}

/* NaN or Inf in an input would make every correlation meaningless: say which file and where. */
static int check_finite(const char *path, const float *x, size_t rows, int D, hp_err *e) {
    for (size_t i = 0; i < rows * D; i++)
        if (!isfinite(x[i]))
            return hp_errf(e, "%s: element %zu (row %zu, column %zu) is not finite (%g)", path, i,
                           i / D, i % D, x[i]);
    return 0;
}

static int dim_int(const char *path, const char *name, int64_t v, int *out, hp_err *e) {
    if (v <= 0 || v > INT_MAX)
        return hp_errf(e, "%s: %s = %lld is out of range (1..%d)", path, name, (long long)v, INT_MAX);
    *out = (int)v;
    return 0;
}

static cJSON *double_array(const double *x, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        cJSON *v = cJSON_CreateNumber(x[i]);
        if (!v || !cJSON_AddItemToArray(a, v)) {
            cJSON_Delete(v);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

static cJSON *head_json(const hp_somp_result *r, int N) {
    cJSON *h = cJSON_CreateObject(), *sup = cJSON_CreateArray(), *coef = cJSON_CreateArray();
    cJSON *evr = double_array(r->evr, r->k);
    int ok = h && sup && coef && evr;
    for (int t = 0; ok && t < r->k; t++) {
        cJSON *v = cJSON_CreateNumber(r->support[t]);
        ok = v && cJSON_AddItemToArray(sup, v);
        if (!ok) cJSON_Delete(v);
    }
    for (int i = 0; ok && i < N; i++) {
        cJSON *row = double_array(r->coef + (size_t)i * r->k, r->k);
        ok = row && cJSON_AddItemToArray(coef, row);
        if (!ok) cJSON_Delete(row);
    }
    if (ok) {
        ok = cJSON_AddItemToObject(h, "support", sup);
        if (ok) sup = NULL;
        ok = ok && cJSON_AddItemToObject(h, "evr", evr);
        if (ok) evr = NULL;
        ok = ok && cJSON_AddItemToObject(h, "coef", coef);
        if (ok) coef = NULL;
        ok = ok && cJSON_AddNumberToObject(h, "h_norm2", r->h_norm2);
    }
    cJSON_Delete(sup);
    cJSON_Delete(evr);
    cJSON_Delete(coef);
    if (!ok) {
        cJSON_Delete(h);
        return NULL;
    }
    return h;
}

static int write_json(const char *path, const hp_somp_result *res, int nheads, int N,
                      const hp_somp_opts *o, int normalize, hp_err *e) {
    cJSON *root = cJSON_CreateObject(), *heads = cJSON_CreateArray();
    int ok = root && heads && cJSON_AddNumberToObject(root, "k", o->k) &&
             cJSON_AddBoolToObject(root, "center", o->center) &&
             cJSON_AddBoolToObject(root, "normalize_atoms", normalize);
    for (int h = 0; ok && h < nheads; h++) {
        cJSON *hj = head_json(&res[h], N);
        ok = hj && cJSON_AddItemToArray(heads, hj);
        if (!ok) cJSON_Delete(hj);
    }
    ok = ok && cJSON_AddItemToObject(root, "heads", heads);
    if (ok) heads = NULL;
    char *txt = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(heads);
    cJSON_Delete(root);
    if (!txt) return hp_errf(e, "%s: out of memory building the JSON", path);
    size_t n = strlen(txt);
    txt[n] = '\n'; /* replaces the NUL: the buffer is only written, never used as a string */
    int rc = hp_write_file_atomic(path, txt, n + 1, e);
    cJSON_free(txt);
    return rc;
}

int cmd_somp(int argc, char **argv) {
    static const struct option longopts[] = {
        {"signals", required_argument, NULL, 's'},
        {"dict", required_argument, NULL, 'd'},
        {"k", required_argument, NULL, 'k'},
        {"center", no_argument, NULL, 'c'},
        {"normalize-atoms", no_argument, NULL, 'n'},
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *sig_path = NULL, *dict_path = NULL, *out_path = NULL, *k_arg = NULL;
    int center = 0, normalize = 0, c;
    optind = 0; /* glibc: full re-initialisation, in case another command parsed before */
    while ((c = getopt_long(argc, argv, "k:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's': sig_path = optarg; break;
        case 'd': dict_path = optarg; break;
        case 'k': k_arg = optarg; break;
        case 'c': center = 1; break;
        case 'n': normalize = 1; break;
        case 'o': out_path = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "headpursuit somp: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!sig_path || !dict_path || !out_path || !k_arg) {
        fprintf(stderr, "headpursuit somp: --signals, --dict, -k and --out are required\n");
        usage(stderr);
        return 2;
    }
    int kl;
    if (hp_opt_int("somp", "-k", k_arg, 1, INT_MAX, &kl)) return 2;
    hp_somp_opts o = {.k = kl, .center = center};

    hp_err e = {{0}};
    float *H = NULL, *Dict = NULL;
    hp_somp_result *res = NULL;
    int sdim, ddim, rc = 1, nheads = 1, N = 0, D = 0, V = 0, Dd = 0;
    int64_t ss[HP_NPY_MAXDIM], ds[HP_NPY_MAXDIM];
    if (hp_npy_read_f32(sig_path, &H, &sdim, ss, &e) ||
        hp_npy_read_f32(dict_path, &Dict, &ddim, ds, &e))
        goto out;
    if (sdim != 2 && sdim != 3) {
        hp_errf(&e, "%s: signals must be [N, D] or [heads, N, D], got %d dimensions", sig_path, sdim);
        goto out;
    }
    if (ddim != 2) {
        hp_errf(&e, "%s: dict must be [V, D], got %d dimensions", dict_path, ddim);
        goto out;
    }
    if ((sdim == 3 && dim_int(sig_path, "heads", ss[0], &nheads, &e)) ||
        dim_int(sig_path, "N", ss[sdim - 2], &N, &e) || dim_int(sig_path, "D", ss[sdim - 1], &D, &e) ||
        dim_int(dict_path, "V", ds[0], &V, &e) || dim_int(dict_path, "D", ds[1], &Dd, &e))
        goto out;
    if (Dd != D) {
        hp_errf(&e, "%s: dict rows have D = %d but the signals in %s have D = %d", dict_path, Dd,
                sig_path, D);
        goto out;
    }
    if (check_finite(sig_path, H, (size_t)nheads * N, D, &e) ||
        check_finite(dict_path, Dict, (size_t)V, D, &e))
        goto out;
    if (normalize)
        for (int j = 0; j < V; j++) {
            float *a = Dict + (size_t)j * D;
            double s = 0;
            for (int d = 0; d < D; d++) s += (double)a[d] * a[d];
            double inv = s > 0 ? 1.0 / sqrt(s) : 0; /* zero atoms stay zero */
            for (int d = 0; d < D; d++) a[d] = (float)(a[d] * inv);
        }

    res = calloc((size_t)nheads, sizeof *res);
    if (!res) {
        hp_errf(&e, "out of memory");
        goto out;
    }
    if (nheads == 1) {
        if (hp_somp_cpu(H, N, D, Dict, V, &o, res, &e)) goto out;
    } else {
        /* Chunks of a few heads per thread keep the threads busy and give a progress line. */
        int chunk = 4 * omp_get_max_threads();
        hp_progress pg;
        hp_progress_start(&pg, "somp", nheads, "heads", 1);
        for (int h0 = 0; h0 < nheads; h0 += chunk) {
            int nh = nheads - h0 < chunk ? nheads - h0 : chunk;
            if (hp_somp_cpu_batch(H + (size_t)h0 * N * D, nh, N, D, Dict, V, &o, res + h0, &e)) {
                char msg[sizeof e.msg];
                snprintf(msg, sizeof msg, "%s", e.msg);
                hp_errf(&e, "%s: heads %d..%d: %s", sig_path, h0, h0 + nh - 1, msg);
                goto out;
            }
            hp_progress_update(&pg, h0 + nh);
        }
        hp_progress_end(&pg);
    }
    if (write_json(out_path, res, nheads, N, &o, normalize, &e)) goto out;
    fprintf(stderr, "somp: %d head%s, N=%d, D=%d, V=%d, k=%d -> %s\n", nheads, nheads == 1 ? "" : "s",
            N, D, V, o.k, out_path);
    rc = 0;
out:
    if (rc) fail(&e);
    if (res)
        for (int h = 0; h < nheads; h++) hp_somp_result_free(&res[h]);
    free(res);
    free(H);
    free(Dict);
    return rc;
}
