/* cli.c: shared command-line helpers. */
#include "cli.h"

#include "dataset.h"
#include "fileio.h"
#include "nvtx.h"
#include "progress.h"

#include <cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int hp_cli_weights_f32;

hp_model *hp_cli_open(const char *path, const char *device, int quiet, hp_err *e) {
    hp_backend *be = hp_backend_create(device, e);
    if (!be) return NULL;
    if (hp_cli_weights_f32) hp_backend_weights_f32(be);
    double t0 = hp_now();
    HP_NVTX_PUSH("load");
    hp_model *m = hp_model_load(path, be, e);
    HP_NVTX_POP();
    if (!m) {
        be->destroy(be);
        return NULL;
    }
    if (!quiet)
        fprintf(stderr, "loaded %s: %s, %d layers x %d heads, %.1fM parameters (%.0f MiB) on %s in %.1fs\n",
                path, m->cfg.arch_name, m->cfg.L, m->cfg.H, m->n_params / 1e6, m->wbytes / 1048576.0,
                be->desc, hp_now() - t0);
    return m;
}

void hp_cli_close(hp_model *m) {
    if (!m) return;
    hp_backend *be = m->be;
    hp_model_free(m);
    be->destroy(be);
}

int hp_cli_apply_heads(hp_model *m, const char *list, float alpha, hp_err *e) {
    const char *s = list;
    while (*s) {
        char *end;
        long l = strtol(s, &end, 10);
        if (end == s || *end != '.') return hp_errf(e, "--heads: expected LAYER.HEAD items, got '%s'", list);
        s = end + 1;
        long h = strtol(s, &end, 10);
        if (end == s) return hp_errf(e, "--heads: expected LAYER.HEAD items, got '%s'", list);
        if (hp_model_edit(m, (int)l, (int)h, alpha, e)) return -1;
        s = end;
        if (*s == ',') s++;
        else if (*s) return hp_errf(e, "--heads: unexpected '%c' in '%s'", *s, list);
    }
    return 0;
}

int hp_cli_fail(const hp_err *e) {
    fprintf(stderr, "headpursuit: %s\n", e->msg[0] ? e->msg : "failed");
    return 1;
}

/* "an integer >= 1", "a number from -10 to 10": the allowed range in words. */
static void range_words(char *buf, size_t n, const char *what, double lo, double hi, int whole) {
    int open_hi = whole ? hi >= (double)INT_MAX : hi >= HUGE_VAL;
    int open_lo = whole ? lo <= (double)INT_MIN : lo <= -HUGE_VAL;
    if (open_hi && open_lo) snprintf(buf, n, "%s", what);
    else if (open_hi) snprintf(buf, n, "%s >= %.*g", what, whole ? 12 : 6, lo);
    else if (open_lo) snprintf(buf, n, "%s <= %.*g", what, whole ? 12 : 6, hi);
    else snprintf(buf, n, "%s from %.*g to %.*g", what, whole ? 12 : 6, lo, whole ? 12 : 6, hi);
}

int hp_opt_int(const char *cmd, const char *opt, const char *val, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (end == val || *end || errno || v < lo || v > hi || v < INT_MIN || v > INT_MAX) {
        char want[96];
        range_words(want, sizeof want, "an integer", (double)lo, (double)hi, 1);
        fprintf(stderr, "headpursuit %s: %s '%s': expected %s (see headpursuit %s --help)\n", cmd, opt, val,
                want, cmd);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int hp_opt_float(const char *cmd, const char *opt, const char *val, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (end == val || *end || errno || !isfinite(v) || !isfinite((float)v) || v < lo || v > hi) {
        char want[96];
        range_words(want, sizeof want, "a number", lo, hi, 0);
        fprintf(stderr, "headpursuit %s: %s '%s': expected %s (see headpursuit %s --help)\n", cmd, opt, val,
                want, cmd);
        return -1;
    }
    *out = (float)v;
    return 0;
}

int hp_opt_u64(const char *cmd, const char *opt, const char *val, unsigned long long *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (end == val || *end || errno || strchr(val, '-')) {
        fprintf(stderr, "headpursuit %s: %s '%s': expected a whole number >= 0 (see headpursuit %s --help)\n",
                cmd, opt, val, cmd);
        return -1;
    }
    *out = v;
    return 0;
}

int hp_opt_unknown(const char *cmd) {
    fprintf(stderr, "headpursuit %s: see 'headpursuit %s --help' for the options\n", cmd, cmd);
    return 2;
}

int hp_opt_input(const char *cmd, const char *opt, const char *path, int dir_ok) {
    struct stat st;
    const char *why = NULL;
    if (stat(path, &st)) why = strerror(errno);
    else if (S_ISDIR(st.st_mode) && !dir_ok) why = "is a directory, expected a file";
    else if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) why = "not a regular file";
    else if (access(path, R_OK)) why = strerror(errno);
    if (!why) return 0;
    fprintf(stderr, "headpursuit %s: %s '%s': %s\n", cmd, opt, path, why);
    return -1;
}

int hp_opt_one_arg(const char *cmd, const char *what, int argc, char **argv) {
    if (optind == argc - 1) return 0;
    if (optind >= argc) fprintf(stderr, "headpursuit %s: missing %s (see headpursuit %s --help)\n", cmd, what, cmd);
    else fprintf(stderr, "headpursuit %s: unexpected argument '%s' after %s '%s' (see headpursuit %s --help)\n", cmd,
                 argv[optind + 1], what, argv[optind], cmd);
    return -1;
}

int hp_opt_qa_file(const char *cmd, const char *opt, const char *path) {
    if (hp_opt_input(cmd, opt, path, 0)) return -1;
    hp_qa_set set;
    hp_err e = {0};
    if (hp_qa_load(path, &set, &e)) {
        fprintf(stderr, "headpursuit %s: %s: %s\n", cmd, opt, e.msg);
        return -1;
    }
    int n = set.n;
    hp_qa_free(&set);
    if (n > 0) return 0;
    fprintf(stderr, "headpursuit %s: %s '%s': no questions in it\n", cmd, opt, path);
    return -1;
}

int hp_opt_words_file(const char *cmd, const char *opt, const char *path) {
    if (hp_opt_input(cmd, opt, path, 0)) return -1;
    hp_wordlist w;
    hp_err e = {0};
    if (hp_wordlist_load(path, &w, &e)) {
        fprintf(stderr, "headpursuit %s: %s: %s\n", cmd, opt, e.msg);
        return -1;
    }
    int n = w.n;
    hp_wordlist_free(&w);
    if (n > 0) return 0;
    fprintf(stderr, "headpursuit %s: %s '%s': no words in it (one word or phrase a line)\n", cmd, opt, path);
    return -1;
}
