/* eval_report.c: shared pieces of the eval reports (see eval_report.h). */
#include "eval_report.h"

#include "fileio.h"
#include "metrics.h"
#include "plot.h"

#include <cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

const char *hp_eval_task(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "--task") && i + 1 < argc) return argv[i + 1];
        if (!strncmp(argv[i], "--task=", 7)) return argv[i] + 7;
    }
    return "qa";
}

int hp_eval_parse_tops(const char *s, int *k, int *n) {
    *n = 0;
    while (*s && *n < HP_EVAL_MAX_K) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v <= 0 || v > INT_MAX || (*n && v <= k[*n - 1])) return -1;
        k[(*n)++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return *n && !*s ? 0 : -1; /* text left over: more than HP_EVAL_MAX_K values */
}

double hp_eval_ratio(double x, double base) { return base > 0 ? x / base : NAN; }

char *hp_eval_path(const char *dir, const char *name) {
    char *p = NULL;
    return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

int hp_eval_mkdir(const char *dir, hp_err *e) {
    char *p = strdup(dir);
    if (!p) return hp_errf(e, "out of memory");
    for (char *s = p + 1; *s; s++) { /* parents first */
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) && errno != EEXIST) {
            hp_errf(e, "%s: cannot create directory: %s", p, strerror(errno));
            free(p);
            return -1;
        }
        *s = '/';
    }
    free(p);
    if (mkdir(dir, 0755) && errno != EEXIST) return hp_errf(e, "%s: cannot create directory: %s", dir, strerror(errno));
    return 0;
}

int hp_eval_curve_set(hp_eval_curve *c, int ki, double base, double somp, double ll,
                      const double *draws, int n_draws, hp_err *e) {
    c->somp[ki] = hp_eval_ratio(somp, base);
    c->ll[ki] = hp_eval_ratio(ll, base);
    c->rnd_median[ki] = c->rnd_q25[ki] = c->rnd_q75[ki] = NAN;
    if (n_draws <= 0) return 0;
    double *v = malloc(sizeof(double) * (size_t)n_draws);
    if (!v) return hp_errf(e, "out of memory");
    for (int d = 0; d < n_draws; d++) v[d] = hp_eval_ratio(draws[d], base);
    hp_summary st;
    int rc = hp_summarize(v, n_draws, &st);
    free(v);
    if (rc) return hp_errf(e, "out of memory");
    c->rnd_median[ki] = st.median;
    c->rnd_q25[ki] = st.q25;
    c->rnd_q75[ki] = st.q75;
    return 0;
}

int hp_eval_plot(const char *path, const char *title, const char *ylabel, const int *ks, int nk,
                 const hp_eval_curve *curves, const char *const *group_names,
                 const char *const *group_short, int n_groups, int with_random, hp_err *e) {
    if (n_groups < 1 || n_groups > 2 || nk < 1 || nk > HP_EVAL_MAX_K)
        return hp_errf(e, "%s: a chart takes 1 or 2 curves and 1..%d values of k", path, HP_EVAL_MAX_K);
    double xk[HP_EVAL_MAX_K];
    for (int i = 0; i < nk; i++) xk[i] = ks[i];
    char names[6][160];
    hp_plot_series ser[6];
    int ns = 0;
    for (int kind = 0; kind < (with_random ? 3 : 2); kind++)
        for (int g = 0; g < n_groups; g++) {
            const hp_eval_curve *c = &curves[g];
            hp_plot_series *s = &ser[ns];
            memset(s, 0, sizeof *s);
            snprintf(names[ns], sizeof names[ns], kind == 0 ? "SOMP heads, %s" : kind == 1 ? "Logit-Lens heads, %s"
                                                                                            : "random heads, %s (median, IQR)",
                     kind && group_short ? group_short[g] : group_names[g]);
            s->name = names[ns];
            s->y = kind == 0 ? c->somp : kind == 1 ? c->ll : c->rnd_median;
            if (kind == 2) {
                s->lo = c->rnd_q25;
                s->hi = c->rnd_q75;
            }
            s->color = kind == 0 ? "#c0392b" : kind == 1 ? "#2471a3" : "#7f8c8d";
            s->dashed = g == 1;
            s->marker = kind; /* circle SOMP, square Logit Lens, triangle random: overlaps stay visible */
            ns++;
        }
    hp_line_chart lc = {.title = title, .xlabel = "k, number of edited heads (log2 axis)", .ylabel = ylabel, .x = xk, .n_x = nk,
                        .series = ser, .n_series = ns, .log2_x = 1, .ymin = NAN, .ymax = NAN, .hline = 1.0};
    return hp_plot_line_svg(path, &lc, e);
}

int hp_eval_heatmap(const char *path, const hp_ranking *rk, int k_max, hp_err *e) {
    size_t nh = (size_t)rk->L * rk->H;
    float *vals = malloc(sizeof(float) * nh);
    unsigned char *hlt = calloc(nh, 1);
    if (!vals || !hlt) {
        free(vals);
        free(hlt);
        return hp_errf(e, "out of memory");
    }
    for (size_t i = 0; i < nh; i++) vals[i] = (float)rk->somp_score[i];
    for (int i = 0; i < k_max && i < rk->n; i++) hlt[rk->somp[i][0] * rk->H + rk->somp[i][1]] = 1;
    char sub[96];
    snprintf(sub, sizeof sub, "outlined: the top k = %d SOMP heads (the largest k edited)", k_max);
    hp_heatmap hm = {.title = "SOMP concept score (EVR) per head", .subtitle = sub, .xlabel = "head",
                     .ylabel = "layer", .colorbar_label = "EVR", .values = vals, .rows = rk->L, .cols = rk->H,
                     .highlight = hlt, .vmin = NAN, .vmax = NAN};
    int rc = hp_plot_heatmap_svg(path, &hm, e);
    free(vals);
    free(hlt);
    return rc;
}

void hp_eval_curve_json(cJSON *r, const hp_eval_curve *c, int ki) {
    cJSON_AddNumberToObject(r, "somp", c->somp[ki]);
    cJSON_AddNumberToObject(r, "logit_lens", c->ll[ki]);
    cJSON_AddNumberToObject(r, "random_median", c->rnd_median[ki]);
    cJSON_AddNumberToObject(r, "random_q25", c->rnd_q25[ki]);
    cJSON_AddNumberToObject(r, "random_q75", c->rnd_q75[ki]);
}

void hp_eval_curve_csv(FILE *f, const hp_eval_curve *c, int ki) {
    fprintf(f, ",%.4f,%.4f,%.4f,%.4f,%.4f\n", c->somp[ki], c->ll[ki], c->rnd_median[ki],
            c->rnd_q25[ki], c->rnd_q75[ki]);
}
