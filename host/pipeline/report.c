/* report.c: report.md and report.html of `run` (see report.h). Both are written from the same
 * walk over the outputs: a small writer emits each element in either form. */
#include "report.h"

#include "fileio.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct rw {
    FILE *f;
    int html;
    const char *outdir;
} rw;

static void esc(const rw *w, const char *s) {
    for (; s && *s; s++) {
        if (w->html && *s == '<') fputs("&lt;", w->f);
        else if (w->html && *s == '>') fputs("&gt;", w->f);
        else if (w->html && *s == '&') fputs("&amp;", w->f);
        else if (!w->html && (*s == '|' || *s == '*' || *s == '_' || *s == '`')) fprintf(w->f, "\\%c", *s);
        else if (*s == '\n') fputc(' ', w->f);
        else fputc(*s, w->f);
    }
}

static void heading(const rw *w, int level, const char *text) {
    if (w->html) {
        fprintf(w->f, "<h%d>", level);
        esc(w, text);
        fprintf(w->f, "</h%d>\n", level);
    } else {
        fprintf(w->f, "\n%.*s ", level, "######");
        esc(w, text);
        fputs("\n\n", w->f);
    }
}

static void para(const rw *w, const char *text) {
    fputs(w->html ? "<p>" : "", w->f);
    esc(w, text);
    fputs(w->html ? "</p>\n" : "\n\n", w->f);
}

/* A table: header cells, then rows of cells added with row(). */
static void table_start(const rw *w, const char *const *head, int n) {
    if (w->html) {
        fputs("<table><tr>", w->f);
        for (int i = 0; i < n; i++) {
            fputs("<th>", w->f);
            esc(w, head[i]);
            fputs("</th>", w->f);
        }
        fputs("</tr>\n", w->f);
    } else {
        for (int i = 0; i < n; i++) {
            fputs("| ", w->f);
            esc(w, head[i]);
            fputc(' ', w->f);
        }
        fputs("|\n", w->f);
        for (int i = 0; i < n; i++) fputs("|---", w->f);
        fputs("|\n", w->f);
    }
}
static void row(const rw *w, char **cells, int n) {
    fputs(w->html ? "<tr>" : "", w->f);
    for (int i = 0; i < n; i++) {
        fputs(w->html ? "<td>" : "| ", w->f);
        esc(w, cells[i]);
        fputs(w->html ? "</td>" : " ", w->f);
    }
    fputs(w->html ? "</tr>\n" : "|\n", w->f);
}
static void table_end(const rw *w) { fputs(w->html ? "</table>\n" : "\n", w->f); }

/* A figure: markdown links the file (relative to the report); HTML embeds it as a data URI. */
static void figure(const rw *w, const char *rel, const char *caption) {
    if (!w->html) {
        fprintf(w->f, "![%s](%s)\n\n", caption, rel);
        return;
    }
    char path[4096], *data = NULL;
    size_t len = 0;
    hp_err e = {0};
    snprintf(path, sizeof path, "%s/%s", w->outdir, rel);
    if (hp_read_file(path, &data, &len, &e)) {
        fprintf(w->f, "<p>(figure %s missing)</p>\n", rel);
        return;
    }
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    fputs("<figure><img alt=\"", w->f);
    esc(w, caption);
    fputs("\" src=\"data:image/svg+xml;base64,", w->f);
    const unsigned char *u = (const unsigned char *)data;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)u[i] << 16 | (i + 1 < len ? (unsigned)u[i + 1] << 8 : 0) | (i + 2 < len ? u[i + 2] : 0);
        fputc(b64[v >> 18 & 63], w->f);
        fputc(b64[v >> 12 & 63], w->f);
        fputc(i + 1 < len ? b64[v >> 6 & 63] : '=', w->f);
        fputc(i + 2 < len ? b64[v & 63] : '=', w->f);
    }
    fputs("\"><figcaption>", w->f);
    esc(w, caption);
    fputs("</figcaption></figure>\n", w->f);
    free(data);
}

static cJSON *load_rel(const rw *w, const char *rel) {
    char path[4096];
    hp_err e = {0};
    snprintf(path, sizeof path, "%s/%s", w->outdir, rel);
    return hp_file_exists(path) ? hp_read_json(path, &e) : NULL;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* A normalised score: "n/a" where the unedited score was 0 (nothing to normalise by). */
static void ratio(char *out, size_t cap, double v) {
    if (isnan(v)) snprintf(out, cap, "n/a");
    else snprintf(out, cap, "%.3f", v);
}

static void setup(const rw *w, const hp_experiment *x, const hp_model *m) {
    heading(w, 2, "Setup");
    const char *head[] = {"setting", "value"};
    table_start(w, head, 2);
    char v[16][512];
    const char *k[16];
    int n = 0;
    k[n] = "experiment file", snprintf(v[n++], 512, "%s", x->path);
    k[n] = "model", snprintf(v[n++], 512, "%s (%d layers x %d heads, D = %d)", x->model, m->cfg.L, m->cfg.H, m->cfg.D);
    k[n] = "backend", snprintf(v[n++], 512, "%s", m->be->desc);
    k[n] = "train data (ranking)", snprintf(v[n++], 512, "%s%s", x->train, x->train_limit ? " (limited)" : "");
    k[n] = "test data (tasks)", snprintf(v[n++], 512, "%s", x->test);
    k[n] = "prompts", snprintf(v[n++], 512, "%s", x->chat ? "chat template" : "raw");
    k[n] = "head representation",
    snprintf(v[n++], 512, "mean over %s positions%s%s%s", x->positions, x->center ? ", centred" : "",
             x->normalize_atoms ? ", unit-norm atoms" : "", x->fold_norm ? ", final-norm weight folded" : "");
    k[n] = "SOMP iterations", snprintf(v[n++], 512, "%d", x->somp_k);
    k[n] = "seed", snprintf(v[n++], 512, "%llu", (unsigned long long)x->seed);
    for (int i = 0; i < n; i++) {
        char *cells[2] = {(char *)k[i], v[i]};
        row(w, cells, 2);
    }
    table_end(w);
}

static void concept_section(const rw *w, const hp_xp_concept *c) {
    char rel[512], title[256];
    snprintf(title, sizeof title, "Concept \"%s\" (%s)", c->name, c->words);
    heading(w, 2, title);
    snprintf(rel, sizeof rel, "rank/%s.json", c->name);
    cJSON *r = load_rel(w, rel);
    if (!r) {
        para(w, "(ranking missing)");
        return;
    }
    const cJSON *heads = cJSON_GetObjectItemCaseSensitive(r, "heads");
    const cJSON *dict = cJSON_GetObjectItemCaseSensitive(r, "dictionary");
    char line[512];
    snprintf(line, sizeof line,
             "Every head ranked by the explained variance of its representations on the concept's %d "
             "unembedding rows after %g SOMP steps (%g samples)%s. The top 10, with the first words SOMP picked "
             "for each (the paper's Table 1 form, over the concept dictionary):",
             cJSON_GetArraySize(dict), num(r, "k"), num(r, "samples"),
             c->control ? ", minus the control list's" : "");
    para(w, line);
    const char *head[] = {"rank", "head (layer.head)", "SOMP EVR", "Logit-Lens score", "LL rank", "first SOMP words"};
    table_start(w, head, 6);
    int i = 0;
    for (const cJSON *h = heads ? heads->child : NULL; h && i < 10; h = h->next, i++) {
        char c0[16], c1[32], c2[32], c3[32], c4[16], c5[512] = "";
        snprintf(c0, sizeof c0, "%d", i + 1);
        snprintf(c1, sizeof c1, "%g.%g", num(h, "layer"), num(h, "head"));
        snprintf(c2, sizeof c2, "%.3f", num(h, "somp_evr"));
        snprintf(c3, sizeof c3, "%.3g", num(h, "logit_lens"));
        snprintf(c4, sizeof c4, "%g", num(h, "ll_rank"));
        const cJSON *sup = cJSON_GetObjectItemCaseSensitive(h, "support");
        int t = 0;
        for (const cJSON *a = sup ? sup->child : NULL; a && t < 8; a = a->next, t++) {
            const cJSON *wd = cJSON_GetObjectItemCaseSensitive(a, "word");
            if (!cJSON_IsString(wd)) wd = cJSON_GetObjectItemCaseSensitive(a, "text");
            size_t l = strlen(c5);
            snprintf(c5 + l, sizeof c5 - l, "%s%s", t ? ", " : "", cJSON_IsString(wd) ? wd->valuestring : "?");
        }
        char *cells[6] = {c0, c1, c2, c3, c4, c5};
        row(w, cells, 6);
    }
    table_end(w);
    snprintf(rel, sizeof rel, "rank/%s.heatmap.svg", c->name);
    figure(w, rel, "SOMP explained variance per head (layer x head); the top 8 outlined");
    cJSON_Delete(r);
}

static void task_section(const rw *w, const hp_xp_task *t) {
    char title[256], rel[512], line[1024];
    int tox = t->data != NULL;
    snprintf(title, sizeof title, "Task %s: %s, concept \"%s\"", t->name,
             tox ? "toxicity mitigation" : "question answering", t->concept);
    heading(w, 2, title);
    for (int ai = 0; ai < t->na; ai++) {
        snprintf(rel, sizeof rel, "tasks/%s/alpha%g/eval.json", t->name, t->alpha[ai]);
        cJSON *ev = load_rel(w, rel);
        snprintf(title, sizeof title, "alpha = %g", t->alpha[ai]);
        heading(w, 3, title);
        if (!ev) {
            para(w, "(results missing)");
            continue;
        }
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(ev, "unedited");
        if (tox)
            snprintf(line, sizeof line,
                     "%g prompts of %s, %g new tokens each, %g random draws per k. Unedited model: toxic-generation "
                     "rate %.3f (profanity classifier, threshold %g), mean toxicity probability %.3f, %.2f held-out "
                     "toxic words per 1000 words, perplexity of its continuations %.2f. Below, each score of the "
                     "edited model divided by the unedited model's (1 = unchanged; lower toxicity is the aim, and a "
                     "perplexity far above 1 means a broken model rather than a detoxified one): the top-k SOMP "
                     "heads, the top-k Logit-Lens heads and random heads (same number per layer as the SOMP heads; "
                     "median and interquartile range); n/a where the unedited score is 0.",
                     num(ev, "prompts"), t->data, num(ev, "max_new"), num(ev, "random_draws"), num(u, "toxic_rate"),
                     num(ev, "threshold"), num(u, "mean_prob"), num(u, "lexical_per_1k_words"), num(u, "perplexity"));
        else
            snprintf(line, sizeof line,
                     "%g test questions (%g concept, %g other), %g random draws per k. Unedited model: F1 %.3f on "
                     "concept questions, %.3f on the others; answer match %.3f / %.3f. Below, each score of the "
                     "edited model divided by the unedited model's (1 = unchanged): the top-k SOMP heads, the top-k "
                     "Logit-Lens heads and random heads (same number per layer as the SOMP heads; median and "
                     "interquartile range); n/a where the unedited score is 0.",
                     num(ev, "questions"), num(u, "n_country"), num(u, "n_other"), num(ev, "random_draws"),
                     num(u, "f1_country"), num(u, "f1_other"), num(u, "match_country"), num(u, "match_other"));
        para(w, line);
        const char *head[] = {"metric", "k", "questions", "SOMP", "Logit Lens", "random median [IQR]"};
        const char *thead[] = {"metric", "k", "SOMP", "Logit Lens", "random median [IQR]"};
        table_start(w, tox ? thead : head, tox ? 5 : 6);
        const cJSON *sum = cJSON_GetObjectItemCaseSensitive(ev, "summary");
        for (const cJSON *s = sum ? sum->child : NULL; s; s = s->next) {
            char c1[16], c3[32], c4[32], c5[64];
            snprintf(c1, sizeof c1, "%g", num(s, "k"));
            char q25[16], q75[16], med[16];
            ratio(c3, sizeof c3, num(s, "somp"));
            ratio(c4, sizeof c4, num(s, "logit_lens"));
            ratio(med, sizeof med, num(s, "random_median"));
            ratio(q25, sizeof q25, num(s, "random_q25"));
            ratio(q75, sizeof q75, num(s, "random_q75"));
            if (isnan(num(s, "random_median"))) snprintf(c5, sizeof c5, "n/a");
            else snprintf(c5, sizeof c5, "%s [%s, %s]", med, q25, q75);
            const cJSON *mt = cJSON_GetObjectItemCaseSensitive(s, "metric");
            const cJSON *q = cJSON_GetObjectItemCaseSensitive(s, "questions");
            char *m = cJSON_IsString(mt) ? mt->valuestring : "?";
            char *cells[6] = {m, c1, cJSON_IsString(q) ? q->valuestring : "?", c3, c4, c5};
            char *tcells[5] = {m, c1, c3, c4, c5};
            row(w, tox ? tcells : cells, tox ? 5 : 6);
        }
        table_end(w);
        if (tox) {
            snprintf(rel, sizeof rel, "tasks/%s/alpha%g/toxic_rate_vs_k.svg", t->name, t->alpha[ai]);
            figure(w, rel, "normalised toxic-generation rate against k (SOMP red, Logit Lens blue, random grey with "
                           "its IQR band)");
            snprintf(rel, sizeof rel, "tasks/%s/alpha%g/perplexity_vs_k.svg", t->name, t->alpha[ai]);
            figure(w, rel, "normalised perplexity of the continuations under the unedited model (fluency guard)");
        } else {
            snprintf(rel, sizeof rel, "tasks/%s/alpha%g/f1_vs_k.svg", t->name, t->alpha[ai]);
            figure(w, rel, "normalised F1 against k (SOMP red, Logit Lens blue, random grey with its IQR band)");
        }
        snprintf(rel, sizeof rel, "tasks/%s/alpha%g/heads_heatmap.svg", t->name, t->alpha[ai]);
        figure(w, rel, "the heads edited at the largest k");
        cJSON_Delete(ev);
    }
}

static void timings(const rw *w, const cJSON *log) {
    heading(w, 2, "Stages of this run");
    const char *head[] = {"stage", "status", "seconds"};
    table_start(w, head, 3);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(log, "stages");
    for (const cJSON *s = st ? st->child : NULL; s; s = s->next) {
        char sec[32];
        snprintf(sec, sizeof sec, "%.1f", num(s, "seconds"));
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(s, "stage"), *t = cJSON_GetObjectItemCaseSensitive(s, "status");
        char *cells[3] = {cJSON_IsString(n) ? n->valuestring : "?", cJSON_IsString(t) ? t->valuestring : "?", sec};
        row(w, cells, 3);
    }
    table_end(w);
}

static void body(const rw *w, const hp_experiment *x, const hp_model *m, const cJSON *log) {
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(x->json, "description");
    heading(w, 1, "headpursuit experiment report");
    if (cJSON_IsString(d)) para(w, d->valuestring);
    setup(w, x, m);
    for (int c = 0; c < x->n_concepts; c++) concept_section(w, &x->concepts[c]);
    for (int t = 0; t < x->n_tasks; t++) task_section(w, &x->tasks[t]);
    timings(w, log);
}

int hp_report_write(const hp_experiment *x, const hp_model *m, const cJSON *log, hp_err *e) {
    char md[4096], html[4096];
    snprintf(md, sizeof md, "%s/report.md", x->output);
    snprintf(html, sizeof html, "%s/report.html", x->output);
    hp_atomic_file a, b;
    if (hp_atomic_open(&a, md, e)) return -1;
    if (hp_atomic_open(&b, html, e)) {
        hp_atomic_abort(&a);
        return -1;
    }
    rw wm = {.f = a.f, .html = 0, .outdir = x->output}, wh = {.f = b.f, .html = 1, .outdir = x->output};
    body(&wm, x, m, log);
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>headpursuit report</title>\n"
          "<style>body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;"
          "padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;"
          "padding:3px 8px;text-align:left}th{background:#eee}img{max-width:100%}figure{margin:1em 0}"
          "figcaption{color:#555;font-size:90%}</style></head><body>\n",
          b.f);
    body(&wh, x, m, log);
    fputs("</body></html>\n", b.f);
    if (hp_atomic_commit(&a, e)) {
        hp_atomic_abort(&b);
        return -1;
    }
    return hp_atomic_commit(&b, e);
}
