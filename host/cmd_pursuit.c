/* cmd_pursuit.c: `rank` (score every head for a concept by SOMP explained variance and by the
 * Logit Lens) and `heads` (what each head writes: its first SOMP tokens over a dictionary). */
#include "commands.h"
#include "experiment.h"
#include "fileio.h"
#include "plot.h"

#include <cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { R_DATA = 2000, R_CONCEPT, R_OUT, R_CSV, R_REPS, R_POS, R_CENTER, R_FOLD, R_NORMAL, R_SINGLE,
       R_LIMIT, R_BATCH, R_DEVICE, R_NOCHAT, R_QUIET, R_VOCAB, R_SHOW, R_HEADS, R_CONTROL, R_HELP };

typedef struct rep_opts {
    const char *data, *reps, *device, *positions;
    int limit, batch, chat, quiet;
} rep_opts;

/* The representations for a data file: reused from --reps when its hash matches, else
 * captured (and saved to --reps when given). */
static int get_reps(hp_model *m, const char *model_path, const rep_opts *o, hp_reps *r, hp_err *e) {
    int pos = hp_positions_parse(o->positions);
    if (pos < 0) return hp_errf(e, "--positions: '%s' is not prompt, mean or last", o->positions);
    char opts[256], hash[17];
    snprintf(opts, sizeof opts, "task=qa;positions=%s;chat=%d;limit=%d;prompt=%s", hp_positions_name(pos),
             o->chat, o->limit, HP_QA_PROMPT);
    if (hp_reps_hash(model_path, o->data, opts, hash, e)) return -1;
    if (o->reps && hp_file_exists(o->reps)) {
        hp_err le;
        if (hp_reps_load(o->reps, hash, r, &le) == 0) {
            if (!o->quiet) fprintf(stderr, "reusing head representations from %s (%d samples)\n", o->reps, r->N);
            return 0;
        }
        if (!o->quiet) fprintf(stderr, "not reusing %s: %s\n", o->reps, le.msg);
    }
    hp_qa_set set;
    if (hp_qa_load(o->data, &set, e)) return -1;
    if (o->limit > 0 && o->limit < set.n) set.n = o->limit; /* items past n are still freed by count below */
    hp_prompts p;
    int n_all = set.n;
    int rc = hp_qa_prompts(m, &set, o->chat, &p, e);
    set.n = n_all;
    hp_qa_free(&set);
    if (rc) return -1;
    rc = hp_reps_capture(m, &p, pos, o->batch, !o->quiet, r, e);
    hp_prompts_free(&p);
    if (rc) return -1;
    if (o->reps) {
        if (hp_reps_save(o->reps, r, model_path, o->data, opts, e)) return -1;
        if (!o->quiet) fprintf(stderr, "saved head representations to %s\n", o->reps);
    }
    return 0;
}

static cJSON *token_json(const hp_model *m, int id, const char *word) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "token", id);
    char *piece = hp_tok_decode(m->tok, (const int32_t[]){id}, 1, 0);
    cJSON_AddStringToObject(t, "text", piece ? piece : "");
    free(piece);
    if (word) cJSON_AddStringToObject(t, "word", word);
    return t;
}

static int write_json(const char *path, cJSON *j, hp_err *e) {
    char *s = cJSON_Print(j);
    if (!s) return hp_errf(e, "%s: out of memory", path);
    int rc = hp_write_file_atomic(path, s, strlen(s), e);
    free(s);
    return rc;
}

static int cmp_desc(const void *a, const void *b, const double *key) {
    double x = key[*(const int *)a], y = key[*(const int *)b];
    return (x < y) - (x > y);
}
static const double *sort_key;
static int cmp_idx(const void *a, const void *b) {
    int c = cmp_desc(a, b, sort_key);
    return c ? c : (*(const int *)a - *(const int *)b); /* ties: lower head index first */
}

static char *with_ext(const char *path, const char *ext) {
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    size_t base = (dot && (!slash || dot > slash)) ? (size_t)(dot - path) : strlen(path);
    char *out = malloc(base + strlen(ext) + 1);
    if (out) {
        memcpy(out, path, base);
        strcpy(out + base, ext);
    }
    return out;
}

int cmd_rank(int argc, char **argv) {
    static const struct option lo[] = {
        {"data", required_argument, 0, R_DATA},       {"concept", required_argument, 0, R_CONCEPT},
        {"out", required_argument, 0, R_OUT},         {"csv", required_argument, 0, R_CSV},
        {"reps", required_argument, 0, R_REPS},       {"positions", required_argument, 0, R_POS},
        {"center", no_argument, 0, R_CENTER},         {"fold-norm", no_argument, 0, R_FOLD},
        {"normalize-atoms", no_argument, 0, R_NORMAL}, {"single-token-only", no_argument, 0, R_SINGLE},
        {"limit", required_argument, 0, R_LIMIT},     {"batch", required_argument, 0, R_BATCH},
        {"device", required_argument, 0, R_DEVICE},   {"no-chat", no_argument, 0, R_NOCHAT},
        {"quiet", no_argument, 0, R_QUIET},           {"help", no_argument, 0, R_HELP},
        {"control", required_argument, 0, R_CONTROL}, {0}};
    rep_opts ro = {.device = "auto", .positions = "prompt", .batch = 16, .chat = 1};
    const char *concept = NULL, *out = "ranking.json", *csv = NULL, *control = NULL;
    hp_somp_opts so = {.k = 50};
    hp_dict_opts dopt = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:", lo, NULL)) != -1) {
        switch (c) {
        case 'k': so.k = atoi(optarg); break;
        case R_DATA: ro.data = optarg; break;
        case R_CONCEPT: concept = optarg; break;
        case R_OUT: out = optarg; break;
        case R_CSV: csv = optarg; break;
        case R_REPS: ro.reps = optarg; break;
        case R_POS: ro.positions = optarg; break;
        case R_CENTER: so.center = 1; break;
        case R_FOLD: dopt.fold_norm = 1; break;
        case R_NORMAL: dopt.normalize = 1; break;
        case R_SINGLE: dopt.single_token = 1; break;
        case R_LIMIT: ro.limit = atoi(optarg); break;
        case R_BATCH: ro.batch = atoi(optarg); break;
        case R_DEVICE: ro.device = optarg; break;
        case R_NOCHAT: ro.chat = 0; break;
        case R_QUIET: ro.quiet = 1; break;
        case R_CONTROL: control = optarg; break;
        case R_HELP:
            printf("usage: headpursuit rank MODEL --data FILE --concept WORDS.txt [-k 50] [--out ranking.json]\n"
                   "Scores every attention head for a concept: SOMP explained-variance ratio of the head's\n"
                   "representations on the concept's unembedding rows, and the Logit-Lens baseline (mean\n"
                   "concept logit). Writes JSON (+ CSV, + a layer x head heatmap SVG beside it).\n"
                   "  --data FILE          QA JSONL or TriviaQA JSON: the prompts (PAPER.md wording)\n"
                   "  --concept FILE       word list, one word or phrase a line\n"
                   "  -k K                 SOMP iterations (default 50)\n"
                   "  --reps FILE          reuse / save head representations (safetensors, checked by hash)\n"
                   "  --positions P        prompt (mean over prompt tokens, default) or last\n"
                   "  --center             subtract the mean representation before SOMP\n"
                   "  --fold-norm          fold the final RMSNorm weight into the dictionary\n"
                   "  --normalize-atoms    unit-norm dictionary atoms\n"
                   "  --single-token-only  keep only words that are one token\n"
                   "  --control FILE       also score every head on a control word list (another\n"
                   "                       concept) and rank by EVR(concept) - EVR(control): a\n"
                   "                       specificity score (not in the paper; default off)\n"
                   "  --limit N            first N samples only\n"
                   "  --batch B            prompts per forward batch (default 16)\n"
                   "  --no-chat            raw prompts instead of the model's chat template\n"
                   "  --csv FILE           CSV path (default: the JSON path with .csv)\n"
                   "  --device D           auto, cpu or cuda\n");
            return 0;
        default: return 2;
        }
    }
    if (optind != argc - 1 || !ro.data || !concept || so.k <= 0) {
        fprintf(stderr, "headpursuit rank: need MODEL, --data and --concept (see --help)\n");
        return 2;
    }
    const char *model_path = argv[optind];
    hp_err e = {0};
    hp_model *m = hp_cli_open(model_path, ro.device, ro.quiet, &e);
    if (!m) return hp_cli_fail(&e);
    so.backend = m->be->name; /* SOMP on the GPU when the model is there */
    hp_reps r = {0};
    hp_dict full = {0}, dict = {0}, cdict = {0};
    hp_head_score *sc = NULL, *csc = NULL;
    int nh = m->cfg.L * m->cfg.H, rc = 1;
    int *order_s = malloc(sizeof(int) * nh), *order_l = malloc(sizeof(int) * nh);
    double *ks = malloc(sizeof(double) * nh), *kl = malloc(sizeof(double) * nh);
    char *csv_path = csv ? strdup(csv) : with_ext(out, ".csv"), *svg_path = with_ext(out, ".heatmap.svg");
    cJSON *j = NULL;
    sc = calloc((size_t)nh, sizeof *sc);
    if (!order_s || !order_l || !ks || !kl || !sc || !csv_path || !svg_path) {
        hp_errf(&e, "out of memory");
        goto done;
    }
    if (get_reps(m, model_path, &ro, &r, &e)) goto done;
    if (r.L != m->cfg.L || r.H != m->cfg.H || r.D != m->cfg.D) {
        hp_errf(&e, "%s: representations of shape [%d,%d,%d,%d] do not fit this model", ro.reps, r.L, r.H, r.N, r.D);
        goto done;
    }
    if (hp_dict_full(m, &dopt, &full, &e) ||
        hp_dict_concept(m, &full, concept, &dopt, ro.quiet ? NULL : stderr, &dict, &e))
        goto done;
    if (hp_score_heads(&r, &dict, &so, !ro.quiet, sc, &e)) goto done;
    if (control) {
        csc = calloc((size_t)nh, sizeof *csc);
        if (!csc) {
            hp_errf(&e, "out of memory");
            goto done;
        }
        if (hp_dict_concept(m, &full, control, &dopt, ro.quiet ? NULL : stderr, &cdict, &e) ||
            hp_score_heads(&r, &cdict, &so, !ro.quiet, csc, &e))
            goto done;
    }
    for (int i = 0; i < nh; i++) {
        order_s[i] = order_l[i] = i;
        ks[i] = sc[i].evr - (csc ? csc[i].evr : 0.0);
        kl[i] = sc[i].ll;
    }
    sort_key = ks;
    qsort(order_s, nh, sizeof(int), cmp_idx);
    sort_key = kl;
    qsort(order_l, nh, sizeof(int), cmp_idx);
    int *rank_s = malloc(sizeof(int) * nh), *rank_l = malloc(sizeof(int) * nh);
    if (!rank_s || !rank_l) {
        free(rank_s);
        free(rank_l);
        hp_errf(&e, "out of memory");
        goto done;
    }
    for (int i = 0; i < nh; i++) {
        rank_s[order_s[i]] = i + 1;
        rank_l[order_l[i]] = i + 1;
    }
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", model_path);
    cJSON_AddStringToObject(j, "data", ro.data);
    cJSON_AddStringToObject(j, "concept", concept);
    cJSON_AddNumberToObject(j, "samples", r.N);
    cJSON_AddNumberToObject(j, "k", so.k);
    cJSON_AddStringToObject(j, "positions", ro.positions);
    cJSON_AddBoolToObject(j, "center", so.center);
    cJSON_AddBoolToObject(j, "fold_norm", dopt.fold_norm);
    cJSON_AddBoolToObject(j, "normalize_atoms", dopt.normalize);
    cJSON_AddBoolToObject(j, "chat", ro.chat);
    if (control) cJSON_AddStringToObject(j, "control", control);
    cJSON_AddStringToObject(j, "somp_order_by", control ? "EVR(concept) - EVR(control)" : "EVR(concept)");
    cJSON_AddNumberToObject(j, "layers", m->cfg.L);
    cJSON_AddNumberToObject(j, "heads_per_layer", m->cfg.H);
    cJSON *dj = cJSON_AddArrayToObject(j, "dictionary");
    for (int i = 0; i < dict.V; i++) cJSON_AddItemToArray(dj, token_json(m, dict.token[i], dict.label[i]));
    cJSON *so_j = cJSON_AddArrayToObject(j, "somp_order"), *ll_j = cJSON_AddArrayToObject(j, "ll_order");
    for (int i = 0; i < nh; i++) {
        cJSON_AddItemToArray(so_j, cJSON_CreateIntArray((const int[]){sc[order_s[i]].layer, sc[order_s[i]].head}, 2));
        cJSON_AddItemToArray(ll_j, cJSON_CreateIntArray((const int[]){sc[order_l[i]].layer, sc[order_l[i]].head}, 2));
    }
    cJSON *hj = cJSON_AddArrayToObject(j, "heads");
    hp_atomic_file af;
    if (hp_atomic_open(&af, csv_path, &e)) {
        free(rank_s);
        free(rank_l);
        goto done;
    }
    fprintf(af.f, "layer,head,somp_evr,logit_lens,somp_rank,ll_rank,somp_tokens\n");
    for (int i = 0; i < nh; i++) {
        const hp_head_score *s = &sc[order_s[i]];
        cJSON *h = cJSON_CreateObject();
        cJSON_AddNumberToObject(h, "layer", s->layer);
        cJSON_AddNumberToObject(h, "head", s->head);
        cJSON_AddNumberToObject(h, "somp_evr", s->evr);
        if (csc) {
            cJSON_AddNumberToObject(h, "control_evr", csc[order_s[i]].evr);
            cJSON_AddNumberToObject(h, "specificity", ks[order_s[i]]);
        }
        cJSON_AddNumberToObject(h, "logit_lens", s->ll);
        cJSON_AddNumberToObject(h, "somp_rank", rank_s[order_s[i]]);
        cJSON_AddNumberToObject(h, "ll_rank", rank_l[order_s[i]]);
        cJSON *sup = cJSON_AddArrayToObject(h, "support");
        fprintf(af.f, "%d,%d,%.6g,%.6g,%d,%d,\"", s->layer, s->head, s->evr, s->ll, rank_s[order_s[i]],
                rank_l[order_s[i]]);
        for (int t = 0; t < s->somp.k; t++) {
            int a = s->somp.support[t];
            cJSON_AddItemToArray(sup, token_json(m, dict.token[a], dict.label[a]));
            if (t < 10) fprintf(af.f, "%s%s", t ? " " : "", dict.label[a]);
        }
        fprintf(af.f, "\"\n");
        cJSON_AddItemToArray(hj, h);
    }
    free(rank_s);
    free(rank_l);
    if (hp_atomic_commit(&af, &e) || write_json(out, j, &e)) goto done;
    /* Heatmap of the SOMP scores with the top 8 heads outlined. */
    float *vals = malloc(sizeof(float) * nh);
    unsigned char *hl = calloc((size_t)nh, 1);
    if (vals && hl) {
        for (int i = 0; i < nh; i++) vals[i] = (float)ks[i];
        for (int i = 0; i < 8 && i < nh; i++) hl[order_s[i]] = 1;
        char title[256];
        snprintf(title, sizeof title, "SOMP %s per head, concept %s (top 8 outlined)",
                 control ? "EVR minus control EVR" : "explained variance", concept);
        hp_heatmap hm = {.title = title, .xlabel = "head", .ylabel = "layer", .colorbar_label = "EVR",
                         .values = vals, .rows = m->cfg.L, .cols = m->cfg.H, .highlight = hl,
                         .vmin = NAN, .vmax = NAN};
        if (hp_plot_heatmap_svg(svg_path, &hm, &e)) {
            free(vals);
            free(hl);
            goto done;
        }
    }
    free(vals);
    free(hl);
    if (!ro.quiet) {
        fprintf(stderr, "wrote %s, %s, %s\n", out, csv_path, svg_path);
        printf("top heads for %s (SOMP EVR, k = %d):\n", concept, so.k);
        for (int i = 0; i < 10 && i < nh; i++) {
            const hp_head_score *s = &sc[order_s[i]];
            printf("  L%d.H%-3d evr %.3f%s ll %8.3f  |", s->layer, s->head, s->evr, "", s->ll);
            if (csc) printf(" (control %.3f) |", csc[order_s[i]].evr);
            for (int t = 0; t < s->somp.k && t < 6; t++) printf(" %s", dict.label[s->somp.support[t]]);
            printf("\n");
        }
    }
    rc = 0;
done:
    if (rc) hp_cli_fail(&e);
    cJSON_Delete(j);
    for (int i = 0; sc && i < nh; i++) hp_somp_result_free(&sc[i].somp);
    for (int i = 0; csc && i < nh; i++) hp_somp_result_free(&csc[i].somp);
    free(sc);
    free(csc);
    hp_dict_free(&cdict);
    free(order_s);
    free(order_l);
    free(ks);
    free(kl);
    free(csv_path);
    free(svg_path);
    hp_dict_free(&full);
    hp_dict_free(&dict);
    hp_reps_free(&r);
    hp_cli_close(m);
    return rc;
}

int cmd_heads(int argc, char **argv) {
    static const struct option lo[] = {
        {"data", required_argument, 0, R_DATA},   {"vocab", required_argument, 0, R_VOCAB},
        {"out", required_argument, 0, R_OUT},     {"reps", required_argument, 0, R_REPS},
        {"positions", required_argument, 0, R_POS}, {"center", no_argument, 0, R_CENTER},
        {"fold-norm", no_argument, 0, R_FOLD},    {"normalize-atoms", no_argument, 0, R_NORMAL},
        {"limit", required_argument, 0, R_LIMIT}, {"batch", required_argument, 0, R_BATCH},
        {"device", required_argument, 0, R_DEVICE}, {"no-chat", no_argument, 0, R_NOCHAT},
        {"quiet", no_argument, 0, R_QUIET},       {"show", required_argument, 0, R_SHOW},
        {"heads", required_argument, 0, R_HEADS}, {"help", no_argument, 0, R_HELP},
        {0}};
    rep_opts ro = {.device = "auto", .positions = "prompt", .batch = 16, .chat = 1};
    const char *vocab = "full", *out = NULL, *heads = NULL;
    hp_somp_opts so = {.k = 50};
    hp_dict_opts dopt = {0};
    int show = 8, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:", lo, NULL)) != -1) {
        switch (c) {
        case 'k': so.k = atoi(optarg); break;
        case R_DATA: ro.data = optarg; break;
        case R_VOCAB: vocab = optarg; break;
        case R_OUT: out = optarg; break;
        case R_REPS: ro.reps = optarg; break;
        case R_POS: ro.positions = optarg; break;
        case R_CENTER: so.center = 1; break;
        case R_FOLD: dopt.fold_norm = 1; break;
        case R_NORMAL: dopt.normalize = 1; break;
        case R_LIMIT: ro.limit = atoi(optarg); break;
        case R_BATCH: ro.batch = atoi(optarg); break;
        case R_DEVICE: ro.device = optarg; break;
        case R_NOCHAT: ro.chat = 0; break;
        case R_QUIET: ro.quiet = 1; break;
        case R_SHOW: show = atoi(optarg); break;
        case R_HEADS: heads = optarg; break;
        case R_HELP:
            printf("usage: headpursuit heads MODEL --data FILE [--vocab full|WORDS.txt] [-k 50] [--show 8]\n"
                   "                [--heads L.H,...] [--out heads.json] [--reps FILE]\n"
                   "What each head writes (PAPER.md Table 1): SOMP over the whole unembedding (or a word\n"
                   "list), printing each head's first tokens and its explained variance.\n"
                   "  --heads L.H,...   only these heads (default: all)\n"
                   "  --show N          tokens printed per head (default 8)\n"
                   "  other options as for rank (--positions, --center, --fold-norm, --normalize-atoms,\n"
                   "  --limit, --batch, --no-chat, --device)\n");
            return 0;
        default: return 2;
        }
    }
    if (optind != argc - 1 || !ro.data || so.k <= 0) {
        fprintf(stderr, "headpursuit heads: need MODEL and --data (see --help)\n");
        return 2;
    }
    const char *model_path = argv[optind];
    hp_err e = {0};
    hp_model *m = hp_cli_open(model_path, ro.device, ro.quiet, &e);
    if (!m) return hp_cli_fail(&e);
    so.backend = m->be->name; /* SOMP on the GPU when the model is there */
    hp_reps r = {0}, sub = {0};
    hp_dict full = {0}, dict = {0};
    hp_head_score *sc = NULL;
    cJSON *j = NULL;
    int rc = 1, nsel = 0;
    int *sel = NULL;
    if (get_reps(m, model_path, &ro, &r, &e)) goto done;
    if (hp_dict_full(m, &dopt, &full, &e)) goto done;
    if (strcmp(vocab, "full") && hp_dict_concept(m, &full, vocab, &dopt, ro.quiet ? NULL : stderr, &dict, &e))
        goto done;
    const hp_dict *use = strcmp(vocab, "full") ? &dict : &full;
    sel = malloc(sizeof(int) * (size_t)r.L * r.H);
    if (!sel) {
        hp_errf(&e, "out of memory");
        goto done;
    }
    if (heads) {
        hp_model_clear_edits(m);
        if (hp_cli_apply_heads(m, heads, 0.0f, &e)) goto done; /* parse + range check only */
        for (int i = 0; i < r.L * r.H; i++)
            if (m->alpha[i] != 1.0f) sel[nsel++] = i;
        hp_model_clear_edits(m);
    } else {
        for (int i = 0; i < r.L * r.H; i++) sel[nsel++] = i;
    }
    /* Gather the selected heads into one block: SOMP runs on them as a batch. */
    sub = (hp_reps){.L = 1, .H = nsel, .N = r.N, .D = r.D};
    size_t blk = (size_t)r.N * r.D;
    sub.h = malloc(sizeof(float) * blk * nsel);
    sc = calloc((size_t)nsel, sizeof *sc);
    if (!sub.h || !sc) {
        hp_errf(&e, "out of memory");
        goto done;
    }
    for (int i = 0; i < nsel; i++) memcpy(sub.h + i * blk, r.h + (size_t)sel[i] * blk, sizeof(float) * blk);
    if (hp_score_heads(&sub, use, &so, !ro.quiet, sc, &e)) goto done;
    j = cJSON_CreateArray();
    for (int i = 0; i < nsel; i++) {
        int l = sel[i] / r.H, h = sel[i] % r.H;
        const hp_somp_result *s = &sc[i].somp;
        printf("L%d.H%-3d evr %.3f |", l, h, sc[i].evr);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "layer", l);
        cJSON_AddNumberToObject(o, "head", h);
        cJSON_AddNumberToObject(o, "evr", sc[i].evr);
        cJSON *toks = cJSON_AddArrayToObject(o, "tokens");
        for (int t = 0; t < s->k; t++) {
            int id = use->token[s->support[t]];
            cJSON *tj = token_json(m, id, use->label ? use->label[s->support[t]] : NULL);
            if (t < show) printf(" %s", cJSON_GetObjectItem(tj, "text")->valuestring);
            cJSON_AddItemToArray(toks, tj);
        }
        printf("\n");
        cJSON_AddItemToArray(j, o);
    }
    if (out && write_json(out, j, &e)) goto done;
    rc = 0;
done:
    if (rc) hp_cli_fail(&e);
    cJSON_Delete(j);
    for (int i = 0; sc && i < nsel; i++) hp_somp_result_free(&sc[i].somp);
    free(sc);
    free(sel);
    hp_reps_free(&sub);
    hp_dict_free(&full);
    hp_dict_free(&dict);
    hp_reps_free(&r);
    hp_cli_close(m);
    return rc;
}
