/* cmd_eval_vision.c: `eval --task classify|caption` on a LLaVA-NeXT model (PAPER.md §6): greedy
 * answers to the paper's classification prompt (accuracy: the answer is the image's class name)
 * or captioning prompt (how many concept keywords the captions hold and, given Flickr30k reference
 * captions, their CIDEr-D: host/cider.h), normalised to the unedited model, with the top-k SOMP
 * heads, the top-k Logit-Lens heads and random controls edited by each alpha. Every image is
 * prepared once (image processor + vision tower) and then answered under every edit, so that the
 * vision side runs once per image. JSON + CSV + SVGs as `eval --task qa`. */
#include "cider.h"
#include "cli.h"
#include "eval_report.h"
#include "experiment.h"
#include "fileio.h"
#include "imageset.h"
#include "llava.h"
#include "progress.h"
#include "sweep.h"

#include <cJSON.h>
#include <ctype.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { V_TASK = 4000, V_IMAGES, V_LABELS, V_CAPTIONS, V_CLASSES, V_OBJECT, V_PROMPT, V_EDIT, V_TOP, V_ALPHA,
       V_RANDOM, V_SEED, V_OUTDIR, V_MAXNEW, V_LIMIT, V_OFFSET, V_BATCH, V_DEVICE, V_KEYWORDS, V_QUIET, V_HELP };

#define MAX_ALPHA HP_SWEEP_MAX_ALPHA


/* Raw totals of one configuration over the images. */
typedef struct vscore {
    double hit, valid; /* classify: answer = the class / = some class name */
    double kw, with_kw; /* caption: keyword occurrences / captions with at least one */
    double cider;       /* caption with reference captions: sum of the images' CIDEr-D */
    int n;
} vscore;

/* The reported metrics of a task, per image: two, and CIDEr-D third for captions with references. */
#define MAX_METRIC 3
static double metric(const vscore *s, int caption, int which) {
    if (s->n == 0) return 0.0;
    if (which == 2) return s->cider / s->n;
    return (caption ? (which ? s->with_kw : s->kw) : (which ? s->valid : s->hit)) / s->n;
}
static const char *const metric_key[2][MAX_METRIC] = {{"accuracy", "valid_answers", NULL},
                                                      {"keywords_per_caption", "captions_with_keyword", "cider"}};
static const char *const metric_label[2][MAX_METRIC] = {{"accuracy", "valid answers", NULL},
                                                        {"keyword count", "captions with a keyword", "CIDEr-D"}};

/* Lower-case ASCII, anything but letters, digits and bytes >= 0x80 as one space, trimmed: the
 * form answers, class names and keywords are compared in. words: every byte other than those
 * separates words; else only whitespace does (class names such as "T-shirt/top" keep their
 * punctuation, but a trailing '.' or quotes around the answer go). */
static char *normalize(const char *s, int words) {
    size_t n = strlen(s);
    char *o = malloc(n + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int keep = isalnum(c) || c >= 0x80 || (!words && !isspace(c));
        if (keep) o[k++] = (char)tolower(c);
        else if (k && o[k - 1] != ' ') o[k++] = ' ';
    }
    while (k && o[k - 1] == ' ') k--;
    o[k] = 0;
    if (!words) { /* strip quotes and final punctuation around the whole answer */
        size_t a = 0;
        while (o[a] == '"' || o[a] == '\'') a++;
        while (k > a && strchr("\"'.,;:!", o[k - 1])) k--;
        memmove(o, o + a, k - a);
        o[k - a] = 0;
    }
    return o;
}

/* Occurrences of the normalised keywords (whole words or phrases) in a normalised caption. */
static int count_keywords(const char *cap, char *const *kw, int n_kw) {
    int count = 0;
    size_t cl = strlen(cap);
    for (int i = 0; i < n_kw; i++) {
        size_t kl = strlen(kw[i]);
        if (!kl) continue;
        for (const char *p = cap; (p = strstr(p, kw[i])); p++)
            if ((p == cap || p[-1] == ' ') && ((size_t)(p - cap) + kl == cl || p[kl] == ' ')) count++;
    }
    return count;
}

/* s with every byte that is not part of valid UTF-8 replaced by U+FFFD (a random or edited model
 * can stop inside a character), so that the JSON and CSV reports stay UTF-8. Frees s. */
static char *utf8_fix(char *s) {
    size_t n = strlen(s);
    long bad = hp_utf8_invalid_at(s, n);
    if (bad < 0) return s;
    char *o = malloc(3 * n + 1), *w = o;
    if (!o) {
        free(s);
        return NULL;
    }
    for (size_t at = 0; at < n;) {
        long b = hp_utf8_invalid_at(s + at, n - at);
        size_t ok = b < 0 ? n - at : (size_t)b;
        memcpy(w, s + at, ok);
        w += ok;
        at += ok;
        if (at < n) {
            memcpy(w, "\xEF\xBF\xBD", 3);
            w += 3;
            at++;
        }
    }
    *w = 0;
    free(s);
    return o;
}

static int parse_alphas(const char *s, float *a, int *n) {
    *n = 0;
    while (*s && *n < MAX_ALPHA) {
        char *end;
        a[(*n)++] = strtof(s, &end);
        if (end == s || (*end && *end != ',') || !isfinite(a[*n - 1])) return -1;
        s = *end ? end + 1 : end;
    }
    return *n && !*s ? 0 : -1;
}

static void csv_quoted(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s == '\n' || *s == '\r' ? ' ' : *s, f);
    }
    fputc('"', f);
}

/* What the sweep's callbacks share: the prepared batch of images and the scoring inputs. */
typedef struct vctx {
    hp_llava *lv;
    hp_model *m;
    const hp_imageset *set;
    const char *text;
    int caption, max_new, n_kw;
    char *const *kw, *const *cls;
    int32_t **ids, **outs;
    int *len, *outn;
    hp_inject *inj;
} vctx;

/* Raw totals per configuration (hp_sweep values). */
enum { V_HIT = 0, V_VALID, V_KW, V_WITH_KW, V_N, V_VALUES };

static int vision_prepare(void *ctx, int i0, int n, hp_err *e) {
    vctx *c = ctx;
    for (int b = 0; b < n; b++)
        if (hp_llava_sample(c->lv, c->set, i0 + b, c->text, &c->ids[b], &c->len[b], &c->inj[b], e)) return -1;
    return 0;
}

static void vision_release(void *ctx, int i0, int n) {
    vctx *c = ctx;
    (void)i0;
    for (int b = 0; b < n; b++) {
        free(c->ids[b]);
        c->ids[b] = NULL;
        hp_llava_inject_free(&c->inj[b]);
    }
}

static int vision_score(void *ctx, int i0, int n, double *s, char **answers, hp_err *e) {
    vctx *c = ctx;
    if (hp_generate(c->m, n, (const int32_t *const *)c->ids, c->len, c->inj, c->max_new, 0, c->outs, c->outn, 0, e))
        return -1;
    int rc = 0;
    for (int b = 0; b < n; b++) {
        char *ans = rc ? NULL : hp_tok_decode(c->m->tok, c->outs[b], c->outn[b], 1);
        if (ans) ans = utf8_fix(ans);
        free(c->outs[b]);
        c->outs[b] = NULL;
        if (rc) continue;
        if (!ans) {
            rc = hp_errf(e, "out of memory");
            continue;
        }
        if (!c->caption) {
            char *nl = strchr(ans, '\n'); /* the answer is the first line */
            if (nl) *nl = 0;
        }
        answers[b] = ans;
        char *na_ = normalize(ans, c->caption);
        if (!na_) {
            rc = hp_errf(e, "out of memory");
            continue;
        }
        if (c->caption) {
            int k = count_keywords(na_, c->kw, c->n_kw);
            s[V_KW] += k;
            s[V_WITH_KW] += k > 0;
        } else {
            int lab = c->set->label[i0 + b];
            s[V_HIT] += !strcmp(na_, c->cls[lab]);
            for (int q = 0; q < c->set->n_classes; q++)
                if (!strcmp(na_, c->cls[q])) {
                    s[V_VALID]++;
                    break;
                }
        }
        s[V_N]++;
        free(na_);
    }
    return rc;
}

static vscore vscore_of(const double *v) {
    return (vscore){.hit = v[V_HIT], .valid = v[V_VALID], .kw = v[V_KW], .with_kw = v[V_WITH_KW], .n = (int)v[V_N]};
}

static void print_help(void) {
    printf("usage: headpursuit eval LLAVA_MODEL --task classify --images DIR|IDX --edit ranking.json\n"
           "                 [--object digit] [--top 8,16,32] [--alpha -1] [--random 10] [--out-dir DIR]\n"
           "       headpursuit eval LLAVA_MODEL --task caption --images DIR [--captions FILE]\n"
           "                 --keywords WORDS.txt --edit ranking.json [--alpha -1,5] ...\n"
           "PAPER.md §6 on LLaVA-NeXT. classify: \"What OBJECT is depicted in this image? Answer EXACTLY\n"
           "with one of the following class names only: <classes>. Answer:\"; accuracy = the first line\n"
           "of the greedy answer equals the image's class name (case-insensitive, surrounding quotes and\n"
           "final punctuation ignored); valid answers = it equals some class name. caption: \"Provide a\n"
           "one-sentence caption for the provided image.\"; keyword count = occurrences of the word\n"
           "list's words (whole words, case-insensitive) per caption; captions with a keyword = their\n"
           "share; with --captions also CIDEr-D. Scores are normalised to the unedited model, for\n"
           "the top-k SOMP heads, the top-k Logit-Lens heads and --random random controls (same\n"
           "per-layer counts as the SOMP heads, disjoint from them, median and IQR), for each alpha.\n"
           "Writes DIR/eval.json, DIR/eval.csv, DIR/answers.csv (every answer under every edit),\n"
           "DIR/<metric>_vs_k_alpha<A>.svg and DIR/heads_heatmap.svg.\n"
           "  --images DIR|IDX   image folder (DIR/<class>/...), flat folder (caption) or IDX images\n"
           "  --labels IDX       IDX labels (default: beside the images file)\n"
           "  --captions FILE    Flickr30k results_20130124.token (--images: its image folder): the\n"
           "                     reference captions' keyword count is reported beside, and the CIDEr-D\n"
           "                     of the captions against them (pycocoevalcap's Cider: document\n"
           "                     frequencies over the references of the evaluated images, PTB-like\n"
           "                     tokenisation; host/cider.h) is a third metric, normalised the same\n"
           "                     way, with DIR/cider_vs_k_alpha<A>.svg and a cider column in answers.csv\n"
           "  --classes FILE     class names in class order (e.g. wordlists/fashion_mnist.txt)\n"
           "  --object WORD      classify: the task object (default \"object\")\n"
           "  --prompt TEXT      user text instead of the task's prompt\n"
           "  --keywords FILE    caption: the concept's word list (wordlists/colors.txt, ...)\n"
           "  --alpha A[,A..]    edit factors (default -1 for classify, -1,5 for caption)\n"
           "  --max-new N        tokens generated (default 10 classify, 40 caption)\n"
           "  --limit N, --offset N  N images of a class-balanced order after the first --offset\n"
           "  --batch B          images per generation batch (default 8)\n"
           "  --seed S           random-control seed; --device auto|cpu|cuda; --quiet\n");
}

int cmd_eval_vision(int argc, char **argv) {
    static const struct option lo[] = {
        {"task", required_argument, 0, V_TASK},         {"images", required_argument, 0, V_IMAGES},
        {"labels", required_argument, 0, V_LABELS},     {"captions", required_argument, 0, V_CAPTIONS},
        {"classes", required_argument, 0, V_CLASSES},   {"object", required_argument, 0, V_OBJECT},
        {"prompt", required_argument, 0, V_PROMPT},     {"edit", required_argument, 0, V_EDIT},
        {"top", required_argument, 0, V_TOP},           {"alpha", required_argument, 0, V_ALPHA},
        {"random", required_argument, 0, V_RANDOM},     {"seed", required_argument, 0, V_SEED},
        {"out-dir", required_argument, 0, V_OUTDIR},    {"max-new", required_argument, 0, V_MAXNEW},
        {"limit", required_argument, 0, V_LIMIT},       {"offset", required_argument, 0, V_OFFSET},
        {"batch", required_argument, 0, V_BATCH},       {"device", required_argument, 0, V_DEVICE},
        {"keywords", required_argument, 0, V_KEYWORDS}, {"quiet", no_argument, 0, V_QUIET},
        {"help", no_argument, 0, V_HELP},               {0}};
    hp_vision_opts vo = {.prompt_kind = "classify", .object = "object"};
    const char *task = NULL, *edit = NULL, *tops = "8,16,32", *alphas = NULL, *outdir = NULL;
    const char *device = "auto", *keywords = NULL;
    int n_random = 10, max_new = 0, batch = 8, quiet = 0, c;
    unsigned long long seed = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case V_TASK: task = optarg; break;
        case V_IMAGES: vo.images = optarg; break;
        case V_LABELS: vo.labels = optarg; break;
        case V_CAPTIONS: vo.captions = optarg; break;
        case V_CLASSES: vo.classes = optarg; break;
        case V_OBJECT: vo.object = optarg; break;
        case V_PROMPT: vo.prompt = optarg; break;
        case V_EDIT: edit = optarg; break;
        case V_TOP: tops = optarg; break;
        case V_ALPHA: alphas = optarg; break;
        case V_RANDOM:
            if (hp_opt_int("eval", "--random", optarg, 0, INT_MAX, &n_random)) return 2;
            break;
        case V_SEED:
            if (hp_opt_u64("eval", "--seed", optarg, &seed)) return 2;
            break;
        case V_OUTDIR: outdir = optarg; break;
        case V_MAXNEW:
            if (hp_opt_int("eval", "--max-new", optarg, 1, INT_MAX, &max_new)) return 2;
            break;
        case V_LIMIT:
            if (hp_opt_int("eval", "--limit", optarg, 0, INT_MAX, &vo.limit)) return 2;
            break;
        case V_OFFSET:
            if (hp_opt_int("eval", "--offset", optarg, 0, INT_MAX, &vo.offset)) return 2;
            break;
        case V_BATCH:
            if (hp_opt_int("eval", "--batch", optarg, 1, INT_MAX, &batch)) return 2;
            break;
        case V_DEVICE: device = optarg; break;
        case V_KEYWORDS: keywords = optarg; break;
        case V_QUIET: quiet = 1; break;
        case V_HELP: print_help(); return 0;
        default: return hp_opt_unknown("eval");
        }
    }
    int caption = task && !strcmp(task, "caption"), ks[HP_EVAL_MAX_K], nk = 0, na = 0;
    float alpha[MAX_ALPHA];
    vo.prompt_kind = caption ? "caption" : "classify";
    if (!alphas) alphas = caption ? "-1,5" : "-1";
    if (!outdir) outdir = caption ? "results/eval_caption" : "results/eval_classify";
    if (max_new == 0) max_new = caption ? 40 : 10;
    if (!task || (!caption && strcmp(task, "classify"))) {
        fprintf(stderr, "headpursuit eval: --task '%s': expected qa, classify or caption\n", task ? task : "");
        return 2;
    }
    if (hp_eval_parse_tops(tops, ks, &nk)) {
        fprintf(stderr, "headpursuit eval: --top '%s': expected up to %d increasing integers >= 1, comma-separated "
                        "(like 8,16,32)\n", tops, HP_EVAL_MAX_K);
        return 2;
    }
    if (parse_alphas(alphas, alpha, &na)) {
        fprintf(stderr, "headpursuit eval: --alpha '%s': expected up to %d numbers, comma-separated (like -1,5)\n",
                alphas, MAX_ALPHA);
        return 2;
    }
    if (hp_opt_one_arg("eval", "LLAVA_MODEL", argc, argv)) return 2;
    if (!vo.images || !edit || (caption && !keywords)) {
        fprintf(stderr, "headpursuit eval: --task %s needs --images, --edit%s (see headpursuit eval --task %s --help)\n",
                task, caption ? " and --keywords" : "", task);
        return 2;
    }
    /* Every input file, before the model loads. */
    if (hp_opt_input("eval", "--images", vo.images, 1) || hp_opt_input("eval", "--edit", edit, 0) ||
        (vo.labels && hp_opt_input("eval", "--labels", vo.labels, 0)) ||
        (vo.captions && hp_opt_input("eval", "--captions", vo.captions, 0)) ||
        (vo.classes && hp_opt_words_file("eval", "--classes", vo.classes)) ||
        (keywords && hp_opt_words_file("eval", "--keywords", keywords)))
        return 2;
    const char *model_path = argv[optind];
    hp_err e = {0};
    hp_llava *lv = hp_vision_open(model_path, device, quiet, &e);
    if (!lv) return hp_cli_fail(&e);
    hp_model *m = lv->m;
    hp_imageset set = {0};
    hp_ranking rk = {0};
    hp_wordlist kwl = {0};
    char **kw = NULL, **cls = NULL, *text = NULL, ***answers = NULL;
    char *runs_dir = NULL, *fingerprint = NULL;
    hp_sweep sw = {0};
    hp_sweep_result res = {0};
    vscore *score = NULL, ref = {0};
    int32_t **ids = NULL, **outs = NULL;
    int *len = NULL, *outn = NULL, nconf = 0, rc = 1, ci;
    double *draws = NULL, *cider_img = NULL; /* [nconf][set.n] per-image CIDEr-D */
    hp_cider *corpus = NULL;
    hp_inject *inj = NULL;
    cJSON *j = NULL;
    char *json_path = hp_eval_path(outdir, "eval.json"), *csv_path = hp_eval_path(outdir, "eval.csv");
    char *ans_path = hp_eval_path(outdir, "answers.csv"), *heat_path = hp_eval_path(outdir, "heads_heatmap.svg");
    if (!json_path || !csv_path || !ans_path || !heat_path) {
        hp_errf(&e, "out of memory");
        goto done;
    }
    if (hp_eval_mkdir(outdir, &e) || hp_vision_dataset(&vo, &set, &e) || hp_ranking_load(edit, &rk, &e) ||
        !(text = hp_vision_user_text(&vo, &set, &e)))
        goto done;
    int max_k = 0;
    for (int i = 0; i < nk; i++)
        if (ks[i] > max_k) max_k = ks[i];
    if (hp_ranking_check(&rk, edit, m->cfg.L, m->cfg.H, max_k, &e)) goto done;
    if (!caption) {
        for (int i = 0; i < set.n; i++)
            if (set.label[i] < 0 || set.label[i] >= set.n_classes) {
                hp_errf(&e, "%s: image %s has no class label (classification needs class folders or IDX labels)",
                        set.source, set.name[i]);
                goto done;
            }
        if (!(cls = calloc((size_t)set.n_classes, sizeof *cls))) goto oom;
        for (int i = 0; i < set.n_classes; i++)
            if (!(cls[i] = normalize(set.classes[i], 0))) goto oom;
    } else {
        if (hp_wordlist_load(keywords, &kwl, &e)) goto done;
        if (!(kw = calloc((size_t)kwl.n, sizeof *kw))) goto oom;
        for (int i = 0; i < kwl.n; i++)
            if (!(kw[i] = normalize(kwl.words[i], 1))) goto oom;
        for (int i = 0; i < set.n && set.captions; i++) /* the references' count, for scale */
            for (int r = 0; r < set.n_captions[i]; r++) {
                char *nc = normalize(set.captions[i][r], 1);
                if (!nc) goto oom;
                int k = count_keywords(nc, kw, kwl.n);
                free(nc);
                ref.kw += k;
                ref.with_kw += k > 0;
                ref.n++;
            }
    }
    ids = calloc((size_t)batch, sizeof *ids);
    outs = calloc((size_t)batch, sizeof *outs);
    len = calloc((size_t)batch, sizeof *len);
    outn = calloc((size_t)batch, sizeof *outn);
    inj = calloc((size_t)batch, sizeof *inj);
    if (!ids || !outs || !len || !outn || !inj) goto oom;
    if (hp_sweep_plan(&sw, &rk, m->cfg.L, m->cfg.H, ks, nk, alpha, na, n_random, seed, &e)) goto done;
    nconf = sw.nconf;
    if (!(score = calloc((size_t)nconf, sizeof *score))) goto oom;
    if (!quiet)
        fprintf(stderr, "%d images of %s x %d edits (%d alphas, k = %s, %d random draws); prompt: %s\n", set.n,
                set.source, nconf, na, tops, n_random, text);
    vctx vc = {.lv = lv, .m = m, .set = &set, .text = text, .caption = caption, .max_new = max_new,
               .n_kw = kwl.n, .kw = kw, .cls = cls, .ids = ids, .outs = outs, .len = len, .outn = outn, .inj = inj};
    if (!(runs_dir = hp_eval_path(outdir, "runs"))) goto oom;
    if (asprintf(&fingerprint, "model %s|task %s|images %s|labels %s|classes %s|n %d|offset %d|prompt %s|max_new %d|keywords %s",
                 model_path, task, set.source, vo.labels ? vo.labels : "", vo.classes ? vo.classes : "", set.n,
                 vo.offset, text, max_new, keywords ? keywords : "") < 0) {
        fingerprint = NULL;
        goto oom;
    }
    hp_sweep_task st = {.name = task, .n_items = set.n, .chunk = batch, .n_values = V_VALUES, .ctx = &vc,
                        .prepare = vision_prepare, .release = vision_release, .score = vision_score,
                        .checkpoint_dir = runs_dir, .fingerprint = fingerprint, .quiet = quiet};
    if (hp_sweep_run(m, &sw, &st, &res, &e)) goto done;
    answers = res.answers;
    for (ci = 0; ci < nconf; ci++) score[ci] = vscore_of(res.values + (size_t)ci * V_VALUES);
    /* CIDEr-D of every configuration's captions against one corpus: the references of the
     * evaluated images, which alone give the document frequencies (the paper's Flickr30k setup). */
    int n_metric = caption && set.captions ? 3 : 2;
    if (n_metric == 3) {
        if (!(corpus = hp_cider_new(1)) || !(cider_img = malloc(sizeof(double) * (size_t)nconf * (size_t)set.n)))
            goto oom;
        for (int i = 0; i < set.n; i++) {
            hp_err sub = {0};
            if (hp_cider_add_image(corpus, (const char *const *)set.captions[i], set.n_captions[i], &sub) < 0) {
                hp_errf(&e, "%s: image %s: %s", set.source, set.name[i], sub.msg);
                goto done;
            }
        }
        for (ci = 0; ci < nconf; ci++) {
            double *per = cider_img + (size_t)ci * (size_t)set.n, mean;
            if (hp_cider_score(corpus, (const char *const *)answers[ci], per, &mean, &e)) goto done;
            for (int i = 0; i < set.n; i++) score[ci].cider += per[i];
        }
    }

    /* ---- report ---- */
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", model_path);
    cJSON_AddStringToObject(j, "task", task);
    cJSON_AddStringToObject(j, "images", set.source);
    cJSON_AddNumberToObject(j, "samples", set.n);
    cJSON_AddStringToObject(j, "prompt", text);
    cJSON_AddStringToObject(j, "ranking", edit);
    cJSON *aj = cJSON_AddArrayToObject(j, "alphas");
    for (int ai = 0; ai < na; ai++) cJSON_AddItemToArray(aj, cJSON_CreateNumber(alpha[ai]));
    cJSON_AddNumberToObject(j, "random_draws", n_random);
    cJSON_AddNumberToObject(j, "seed", (double)seed);
    cJSON_AddNumberToObject(j, "max_new", max_new);
    if (caption) cJSON_AddStringToObject(j, "keywords", keywords);
    else {
        cJSON *cj = cJSON_AddArrayToObject(j, "classes");
        for (int i = 0; i < set.n_classes; i++) cJSON_AddItemToArray(cj, cJSON_CreateString(set.classes[i]));
    }
    if (n_metric == 3)
        cJSON_AddStringToObject(j, "cider_metric",
                                "CIDEr-D as pycocoevalcap's Cider (1..4-grams, sigma 6, x10), document frequencies "
                                "over the reference captions of these images, PTB-like tokenisation (host/cider.h)");
    cJSON *uj = cJSON_AddObjectToObject(j, "unedited");
    for (int w = 0; w < n_metric; w++)
        cJSON_AddNumberToObject(uj, metric_key[caption][w], metric(&score[0], caption, w));
    if (ref.n) {
        cJSON *rj = cJSON_AddObjectToObject(j, "reference_captions");
        cJSON_AddNumberToObject(rj, "captions", ref.n);
        for (int w = 0; w < 2; w++) cJSON_AddNumberToObject(rj, metric_key[1][w], metric(&ref, 1, w));
    }
    cJSON *rows = cJSON_AddArrayToObject(j, "results");
    for (ci = 1; ci < nconf; ci++) {
        cJSON *r = cJSON_CreateObject();
        hp_sweep_conf_json(&sw, ci, r, 1);
        for (int w = 0; w < n_metric; w++) {
            char key[64];
            double v = metric(&score[ci], caption, w);
            snprintf(key, sizeof key, "norm_%s", metric_key[caption][w]);
            cJSON_AddNumberToObject(r, metric_key[caption][w], v);
            cJSON_AddNumberToObject(r, key, hp_eval_ratio(v, metric(&score[0], caption, w)));
        }
        cJSON_AddItemToArray(rows, r);
    }
    /* Summary per alpha and metric: normalised SOMP / LL / random median [IQR] per k. */
    hp_atomic_file af;
    if (hp_atomic_open(&af, csv_path, &e)) goto done;
    fprintf(af.f, "metric,alpha,k,somp,logit_lens,random_median,random_q25,random_q75\n");
    cJSON *sum = cJSON_AddArrayToObject(j, "summary");
    hp_eval_curve cv[MAX_ALPHA][MAX_METRIC];
    if (!(draws = malloc(sizeof(double) * (size_t)nconf))) { /* one metric of every configuration */
        hp_atomic_abort(&af);
        goto oom;
    }
    for (int ai = 0; ai < na; ai++)
        for (int w = 0; w < n_metric; w++) {
            hp_eval_curve *cw = &cv[ai][w];
            for (ci = 0; ci < nconf; ci++) draws[ci] = metric(&score[ci], caption, w);
            if (hp_sweep_curve(&sw, draws, ai, cw, &e)) {
                hp_atomic_abort(&af);
                goto done;
            }
            for (int ki = 0; ki < nk; ki++) {
                fprintf(af.f, "%s,%g,%d", metric_key[caption][w], alpha[ai], ks[ki]);
                hp_eval_curve_csv(af.f, cw, ki);
                cJSON *r = cJSON_CreateObject();
                cJSON_AddStringToObject(r, "metric", metric_key[caption][w]);
                cJSON_AddNumberToObject(r, "alpha", alpha[ai]);
                cJSON_AddNumberToObject(r, "k", ks[ki]);
                hp_eval_curve_json(r, cw, ki);
                cJSON_AddItemToArray(sum, r);
            }
        }
    cJSON *ua = cJSON_AddArrayToObject(j, "unedited_answers");
    for (int i = 0; i < set.n; i++) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "image", set.name[i]);
        if (!caption) cJSON_AddStringToObject(a, "class", set.classes[set.label[i]]);
        cJSON_AddStringToObject(a, "answer", answers[0][i]);
        cJSON_AddItemToArray(ua, a);
    }
    hp_atomic_file an;
    if (hp_atomic_open(&an, ans_path, &e)) {
        hp_atomic_abort(&af);
        goto done;
    }
    fprintf(an.f, "alpha,k,method,draw,image,class,answer%s\n", n_metric == 3 ? ",cider" : "");
    for (ci = 0; ci < nconf; ci++)
        for (int i = 0; i < set.n; i++) {
            const hp_sweep_conf *cf = &sw.conf[ci];
            /* draw column: the random draw, -2 for SOMP and -1 for Logit-Lens heads */
            if (ci)
                fprintf(an.f, "%g,%d,%s,%d,", cf->alpha, cf->k, hp_sweep_method_name[cf->method],
                        cf->method == HP_SWEEP_RANDOM ? cf->draw : cf->method == HP_SWEEP_SOMP ? -2 : -1);
            else fprintf(an.f, ",0,unedited,-1,");
            csv_quoted(an.f, set.name[i]);
            fputc(',', an.f);
            csv_quoted(an.f, caption || set.label[i] < 0 ? "" : set.classes[set.label[i]]);
            fputc(',', an.f);
            csv_quoted(an.f, answers[ci][i]);
            if (n_metric == 3) fprintf(an.f, ",%.17g", cider_img[(size_t)ci * (size_t)set.n + (size_t)i]);
            fputc('\n', an.f);
        }
    char *js = cJSON_Print(j);
    if (!js) {
        hp_atomic_abort(&af);
        hp_atomic_abort(&an);
        goto oom;
    }
    int wrc = hp_atomic_commit(&af, &e);
    wrc = wrc ? (hp_atomic_abort(&an), -1) : hp_atomic_commit(&an, &e);
    if (!wrc) wrc = hp_write_file_atomic(json_path, js, strlen(js), &e);
    free(js);
    if (wrc) goto done;
    for (int ai = 0; ai < na; ai++) {
        char name[96], title[200], ylabel[64], *svg;
        snprintf(name, sizeof name, "%s_vs_k_alpha%g.svg", caption ? "keywords" : "accuracy", alpha[ai]);
        snprintf(title, sizeof title, "%s with k heads scaled by %g (normalised to the unedited model)",
                 caption ? "Caption keyword count" : "Classification accuracy", alpha[ai]);
        snprintf(ylabel, sizeof ylabel, "%s edited / unedited", metric_label[caption][0]);
        if (!(svg = hp_eval_path(outdir, name))) goto oom;
        int prc = hp_eval_plot(svg, title, ylabel, ks, nk, cv[ai], metric_label[caption], NULL, 2, n_random > 0,
                               &e);
        if (!prc && !quiet) fprintf(stderr, "wrote %s\n", svg);
        free(svg);
        if (prc) goto done;
        if (n_metric < 3) continue;
        static const char *const cider_name[] = {"CIDEr-D"};
        snprintf(name, sizeof name, "cider_vs_k_alpha%g.svg", alpha[ai]);
        snprintf(title, sizeof title, "Caption CIDEr-D with k heads scaled by %g (normalised to the unedited model)",
                 alpha[ai]);
        if (!(svg = hp_eval_path(outdir, name))) goto oom;
        prc = hp_eval_plot(svg, title, "CIDEr-D edited / unedited", ks, nk, &cv[ai][2], cider_name, NULL, 1, n_random > 0, &e);
        if (!prc && !quiet) fprintf(stderr, "wrote %s\n", svg);
        free(svg);
        if (prc) goto done;
    }
    if (hp_eval_heatmap(heat_path, &rk, ks[nk - 1], &e)) goto done;
    if (!quiet) fprintf(stderr, "wrote %s, %s, %s, %s\n", json_path, csv_path, ans_path, heat_path);
    for (int ai = 0; ai < na; ai++)
        for (int w = 0; w < n_metric; w++) {
            printf("alpha %g: normalised %s (unedited %.3f; %d images)\n", alpha[ai], metric_label[caption][w],
                   metric(&score[0], caption, w), set.n);
            printf("%4s %8s %8s %18s\n", "k", "SOMP", "LL", "random med [IQR]");
            for (int ki = 0; ki < nk; ki++)
                printf("%4d %8.3f %8.3f %8.3f [%.2f,%.2f]\n", ks[ki], cv[ai][w].somp[ki], cv[ai][w].ll[ki],
                       cv[ai][w].rnd_median[ki], cv[ai][w].rnd_q25[ki], cv[ai][w].rnd_q75[ki]);
        }
    rc = 0;
    goto done;
oom:
    hp_errf(&e, "out of memory");
done:
    if (rc) hp_cli_fail(&e);
    hp_model_clear_edits(m);
    cJSON_Delete(j);
    free(draws);
    free(cider_img);
    hp_cider_free(corpus);
    for (int b = 0; ids && outs && inj && b < batch; b++) {
        free(ids[b]);
        free(outs[b]);
        hp_llava_inject_free(&inj[b]);
    }
    free(ids);
    free(outs);
    free(len);
    free(outn);
    free(inj);
    hp_sweep_result_free(&res);
    hp_sweep_free(&sw);
    free(runs_dir);
    free(fingerprint);
    free(score);
    for (int i = 0; cls && i < set.n_classes; i++) free(cls[i]);
    free(cls);
    for (int i = 0; kw && i < kwl.n; i++) free(kw[i]);
    free(kw);
    hp_wordlist_free(&kwl);
    free(text);
    free(json_path);
    free(csv_path);
    free(ans_path);
    free(heat_path);
    hp_ranking_free(&rk);
    hp_imageset_free(&set);
    hp_vision_close(lv);
    return rc;
}
