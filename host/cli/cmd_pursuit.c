/* cmd_pursuit.c: `rank` (score every head for a concept by SOMP explained variance and by the
 * Logit Lens) and `heads` (what each head writes: its first SOMP tokens over a dictionary), over
 * QA prompts (text models) or over an image dataset (LLaVA-NeXT, --images). */
#include "cli.h"
#include "commands.h"
#include "experiment.h"
#include "fileio.h"
#include "imageset.h"
#include "llava.h"
#include "plot.h"
#include "ranking.h"

#include <cJSON.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

enum { R_DATA = 2000, R_CONCEPT, R_OUT, R_CSV, R_REPS, R_POS, R_CENTER, R_FOLD, R_NORMAL, R_SINGLE,
       R_LIMIT, R_BATCH, R_DEVICE, R_NOCHAT, R_QUIET, R_VOCAB, R_SHOW, R_HEADS, R_CONTROL, R_HELP,
       R_IMAGES, R_LABELS, R_CAPTIONS, R_CLASSES, R_KIND, R_OBJECT, R_PROMPT, R_OFFSET, R_MAXPROMPT };

typedef struct rep_opts {
    const char *data, *reps, *device, *positions;
    int limit, batch, chat, quiet;
    int max_prompt; /* --max-prompt-tokens (0: the model's context) */
    hp_vision_opts v; /* v.images set: an image dataset through a LLaVA model */
} rep_opts;

/* The image-dataset options rank and heads share (handled by vision_option). */
#define VISION_LONGOPTS                                                                            \
    {"images", required_argument, 0, R_IMAGES}, {"labels", required_argument, 0, R_LABELS},       \
    {"captions", required_argument, 0, R_CAPTIONS}, {"classes", required_argument, 0, R_CLASSES}, \
    {"prompt-kind", required_argument, 0, R_KIND}, {"object", required_argument, 0, R_OBJECT},    \
    {"prompt", required_argument, 0, R_PROMPT}, {"offset", required_argument, 0, R_OFFSET}

static const char *VISION_HELP =
    "images (MODEL a LLaVA-NeXT directory):\n"
    "  --images DIR|IDX     image folder (DIR/<class>/*.png|jpg, classes sorted; or a flat folder),\n"
    "                       or an IDX images file (MNIST layout, .gz or not)\n"
    "  --labels IDX         IDX labels (default: the images file's name with labels/idx1, if present)\n"
    "  --captions FILE      Flickr30k results_20130124.token; --images is then its image folder\n"
    "  --classes FILE       class names, one a line in class order (default: folder names, or\n"
    "                       0, 1, ... for IDX labels)\n"
    "  --prompt-kind K      classify (default: PAPER.md's prompt listing the class names) or\n"
    "                       caption (\"Provide a one-sentence caption for the provided image.\")\n"
    "  --object WORD        classify: \"What WORD is depicted in this image?\" (default \"object\")\n"
    "  --prompt TEXT        user text instead of the prompt kind's\n"
    "  --positions P        image (mean over the image tokens, default), text (the other prompt\n"
    "                       tokens), last, or all\n"
    "  --limit N / --offset N  N images of a class-balanced order (round robin over classes),\n"
    "                       skipping the first --offset (disjoint splits for rank and eval)\n"
    "  --batch B            images per forward batch\n"
    "  without --concept, rank's dictionary is the dataset's class names\n";

/* One option rank and heads share (the data, the representations, SOMP and the dictionary): 1 when
 * taken, 0 when c is not one, -1 for a bad value (said). */
static int rep_option(int c, rep_opts *ro, hp_somp_opts *so, hp_dict_opts *dopt, const char *cmd) {
    switch (c) {
    case 'k': return hp_opt_int(cmd, "-k", optarg, 1, INT_MAX, &so->k) ? -1 : 1;
    case R_DATA: ro->data = optarg; return 1;
    case R_REPS: ro->reps = optarg; return 1;
    case R_POS: ro->positions = optarg; return 1;
    case R_CENTER: so->center = 1; return 1;
    case R_FOLD: dopt->fold_norm = 1; return 1;
    case R_NORMAL: dopt->normalize = 1; return 1;
    case R_LIMIT: return hp_opt_int(cmd, "--limit", optarg, 0, INT_MAX, &ro->limit) ? -1 : 1;
    case R_BATCH: return hp_opt_int(cmd, "--batch", optarg, 1, INT_MAX, &ro->batch) ? -1 : 1;
    case R_DEVICE: ro->device = optarg; return 1;
    case R_NOCHAT: ro->chat = 0; return 1;
    case R_QUIET: ro->quiet = 1; return 1;
    case R_MAXPROMPT:
        return hp_opt_int(cmd, "--max-prompt-tokens", optarg, 1, INT_MAX, &ro->max_prompt) ? -1 : 1;
    default: return 0;
    }
}

/* One image-dataset option into o; 1 when taken, 0 when c is not one (or --offset is bad, said). */
static int vision_option(int c, hp_vision_opts *o, const char *cmd) {
    switch (c) {
    case R_IMAGES: o->images = optarg; return 1;
    case R_LABELS: o->labels = optarg; return 1;
    case R_CAPTIONS: o->captions = optarg; return 1;
    case R_CLASSES: o->classes = optarg; return 1;
    case R_KIND: o->prompt_kind = optarg; return 1;
    case R_OBJECT: o->object = optarg; return 1;
    case R_PROMPT: o->prompt = optarg; return 1;
    case R_OFFSET: return !hp_opt_int(cmd, "--offset", optarg, 0, INT_MAX, &o->offset);
    default: return 0;
    }
}

/* The input files a capture reads, checked before the model loads; prints why not and returns
 * -1. --reps may not exist yet (it is written then). */
static int check_rep_inputs(const char *cmd, const rep_opts *o) {
    if (o->data && hp_opt_qa_file(cmd, "--data", o->data)) return -1;
    if (o->v.images && hp_opt_input(cmd, "--images", o->v.images, 1)) return -1;
    if (o->v.labels && hp_opt_input(cmd, "--labels", o->v.labels, 0)) return -1;
    if (o->v.captions && hp_opt_input(cmd, "--captions", o->v.captions, 0)) return -1;
    if (o->v.classes && hp_opt_words_file(cmd, "--classes", o->v.classes)) return -1;
    if (o->reps && hp_file_exists(o->reps) && hp_opt_input(cmd, "--reps", o->reps, 0)) return -1;
    return 0;
}

/* --positions checked before the model loads (get_reps parses it again). */
static int bad_positions(const char *cmd, const rep_opts *o) {
    if (o->v.images ? hp_vpos_parse(o->positions) >= 0 : hp_positions_parse(o->positions) >= 0) return 0;
    fprintf(stderr, "headpursuit %s: --positions '%s': expected %s\n", cmd, o->positions,
            o->v.images ? "image, text, last or all" : "prompt, mean or last");
    return 1;
}

/* Arguments that leave the data source ambiguous or unknown; prints why. */
static int bad_source(const char *cmd, const rep_opts *o) {
    if (!o->data == !o->v.images) {
        fprintf(stderr, "headpursuit %s: need exactly one of --data (QA prompts) and --images (see --help)\n", cmd);
        return 1;
    }
    if (!o->v.images && (o->v.labels || o->v.captions || o->v.classes || o->v.prompt || o->v.offset)) {
        fprintf(stderr, "headpursuit %s: --labels, --captions, --classes, --prompt and --offset go with --images\n", cmd);
        return 1;
    }
    return 0;
}

/* Representations of an image dataset: reused from --reps when its hash (model, options, the
 * images' bytes) matches, else captured (and saved to --reps when given). */
static int get_reps_vision(hp_llava *lv, const hp_imageset *set, const char *model_path, const rep_opts *o,
                           hp_reps *r, hp_err *e) {
    int pos = hp_vpos_parse(o->positions);
    if (pos < 0) return hp_errf(e, "--positions: '%s' is not image, text, last or all", o->positions);
    char *text = hp_vision_user_text(&o->v, set, e), *opts = NULL, *salt = NULL, hash[17];
    if (!text) return -1;
    int rc = -1;
    if (asprintf(&opts, "task=vision;positions=%s;offset=%d;limit=%d;prompt=%s", hp_vpos_name(pos), o->v.offset,
                 o->limit, text) < 0 || asprintf(&salt, "%s\n%s", model_path, opts) < 0) {
        hp_errf(e, "out of memory");
        goto done;
    }
    if (hp_imageset_hash(set, salt, hash, e)) goto done;
    if (o->reps && hp_file_exists(o->reps)) {
        hp_err le;
        if (hp_reps_load(o->reps, hash, r, &le) == 0) {
            if (!o->quiet) fprintf(stderr, "reusing head representations from %s (%d images)\n", o->reps, r->N);
            rc = 0;
            goto done;
        }
        if (!o->quiet) fprintf(stderr, "not reusing %s: %s\n", o->reps, le.msg);
    }
    if (!o->quiet) fprintf(stderr, "%d images of %s, prompt: %s\n", set->n, set->source, text);
    const char **texts = malloc(sizeof(char *) * (size_t)set->n);
    if (!texts) {
        hp_errf(e, "out of memory");
        goto done;
    }
    for (int i = 0; i < set->n; i++) texts[i] = text;
    rc = hp_reps_capture_llava(lv, set, texts, (hp_vpos)pos, o->batch, !o->quiet, r, e);
    free(texts);
    if (!rc && o->reps) {
        rc = hp_reps_save_hashed(o->reps, r, model_path, o->v.images, opts, hash, e);
        if (!rc && !o->quiet) fprintf(stderr, "saved head representations to %s\n", o->reps);
    }
done:
    free(text);
    free(opts);
    free(salt);
    return rc;
}

/* Opens MODEL as a LLaVA-NeXT model for --images, else as a text model. */
static hp_model *open_model(const char *path, const rep_opts *o, hp_llava **lv, hp_err *e) {
    *lv = NULL;
    if (!o->v.images) return hp_cli_open(path, o->device, o->quiet, e);
    *lv = hp_vision_open(path, o->device, o->quiet, e);
    return *lv ? (*lv)->m : NULL;
}

static void close_model(hp_model *m, hp_llava *lv) {
    if (lv) hp_vision_close(lv);
    else hp_cli_close(m);
}

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
    if (hp_reps_capture_qa(m, o->data, o->limit, o->chat, hp_prompt_cap(m, o->max_prompt), pos, o->batch, !o->quiet,
                           r, e))
        return -1;
    if (o->reps) {
        if (hp_reps_save(o->reps, r, model_path, o->data, opts, e)) return -1;
        if (!o->quiet) fprintf(stderr, "saved head representations to %s\n", o->reps);
    }
    return 0;
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
    static const char CMD[] = "rank";
    static const struct option lo[] = {
        {"data", required_argument, 0, R_DATA},       {"concept", required_argument, 0, R_CONCEPT},
        {"out", required_argument, 0, R_OUT},         {"csv", required_argument, 0, R_CSV},
        {"reps", required_argument, 0, R_REPS},       {"positions", required_argument, 0, R_POS},
        {"center", no_argument, 0, R_CENTER},         {"fold-norm", no_argument, 0, R_FOLD},
        {"normalize-atoms", no_argument, 0, R_NORMAL}, {"single-token-only", no_argument, 0, R_SINGLE},
        {"limit", required_argument, 0, R_LIMIT},     {"batch", required_argument, 0, R_BATCH},
        {"device", required_argument, 0, R_DEVICE},   {"no-chat", no_argument, 0, R_NOCHAT},
        {"quiet", no_argument, 0, R_QUIET},           {"help", no_argument, 0, R_HELP},
        {"control", required_argument, 0, R_CONTROL}, {"max-prompt-tokens", required_argument, 0, R_MAXPROMPT},
        VISION_LONGOPTS, {0}};
    rep_opts ro = {.device = "auto", .batch = 16, .chat = 1, .v = {.prompt_kind = "classify", .object = "object"}};
    const char *concept = NULL, *out = "ranking.json", *csv = NULL, *control = NULL;
    hp_somp_opts so = {.k = 50};
    hp_dict_opts dopt = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:", lo, NULL)) != -1) {
        switch (c) {
        case R_CONCEPT: concept = optarg; break;
        case R_OUT: out = optarg; break;
        case R_CSV: csv = optarg; break;
        case R_SINGLE: dopt.single_token = 1; break;
        case R_CONTROL: control = optarg; break;
        case R_HELP:
            printf("usage: headpursuit rank MODEL --data FILE --concept WORDS.txt [-k 50] [--out ranking.json]\n"
                   "       headpursuit rank LLAVA_MODEL --images DIR|IDX [--concept WORDS.txt] [--prompt-kind K]\n"
                   "Scores every attention head for a concept: SOMP explained-variance ratio of the head's\n"
                   "representations on the concept's unembedding rows, and the Logit-Lens baseline (mean\n"
                   "concept logit). Writes JSON (+ CSV, + a layer x head heatmap SVG, + .shared_tokens.txt:\n"
                   "the concept words whose first token an earlier word took, beside it).\n"
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
                   "  --max-prompt-tokens N  refuse (naming the record) a prompt of more than N tokens\n"
                   "                       (default: the model's context length, if known)\n"
                   "  --csv FILE           CSV path (default: the JSON path with .csv)\n"
                   "  --device D           auto, cpu or cuda\n%s", VISION_HELP);
            return 0;
        default: {
            int t = rep_option(c, &ro, &so, &dopt, CMD);
            if (t > 0) break;
            if (t < 0) return 2;
            if (c >= R_IMAGES && c <= R_OFFSET) {
                if (vision_option(c, &ro.v, CMD)) break;
                return 2;
            }
            return hp_opt_unknown(CMD);
        }
        }
    }
    if (hp_opt_one_arg(CMD, "MODEL", argc, argv) || bad_source(CMD, &ro)) return 2;
    if (!concept && !ro.v.images) {
        fprintf(stderr, "headpursuit rank: need --concept WORDS.txt with --data (see headpursuit rank --help)\n");
        return 2;
    }
    /* Every input file, before the model loads and the capture runs. */
    if (check_rep_inputs(CMD, &ro) || (concept && hp_opt_words_file(CMD, "--concept", concept)) ||
        (control && hp_opt_words_file(CMD, "--control", control)))
        return 2;
    if (!ro.positions) ro.positions = ro.v.images ? "image" : "prompt";
    if (bad_positions(CMD, &ro)) return 2;
    ro.v.limit = ro.limit;
    const char *model_path = argv[optind];
    hp_err e = {0};
    hp_llava *lv;
    hp_model *m = open_model(model_path, &ro, &lv, &e);
    if (!m) return hp_cli_fail(&e);
    hp_imageset set = {0};
    char *classes_tmp = NULL, *user_text = NULL;
    so.backend = m->be->name; /* SOMP on the GPU when the model is there */
    hp_reps r = {0};
    hp_dict dict = {0};
    hp_head_score *sc = NULL, *csc = NULL;
    int nh = m->cfg.L * m->cfg.H, rc = 1;
    int *order_s = malloc(sizeof(int) * nh);
    char *csv_path = csv ? strdup(csv) : with_ext(out, ".csv"), *svg_path = with_ext(out, ".heatmap.svg");
    char *shared_path = with_ext(out, ".shared_tokens.txt");
    cJSON *j = NULL;
    sc = calloc((size_t)nh, sizeof *sc);
    if (!order_s || !sc || !csv_path || !svg_path || !shared_path) {
        hp_errf(&e, "out of memory");
        goto done;
    }
    if (ro.v.images) {
        if (hp_vision_dataset(&ro.v, &set, &e) || !(user_text = hp_vision_user_text(&ro.v, &set, &e)) ||
            get_reps_vision(lv, &set, model_path, &ro, &r, &e))
            goto done;
        if (!concept) { /* the dictionary of the classification task: its class names */
            if (set.n_classes == 0) {
                hp_errf(&e, "%s: no class names for a dictionary: give --concept", set.source);
                goto done;
            }
            if (hp_vision_classes_file(&set, &classes_tmp, &e)) goto done;
        }
    } else if (get_reps(m, model_path, &ro, &r, &e)) {
        goto done;
    }
    const char *concept_path = concept ? concept : classes_tmp, *concept_name = concept ? concept : "class names";
    if (r.L != m->cfg.L || r.H != m->cfg.H || r.D != m->cfg.D) {
        hp_errf(&e, "%s: representations of shape [%d,%d,%d,%d] do not fit this model", ro.reps, r.L, r.H, r.N, r.D);
        goto done;
    }
    if (control && !(csc = calloc((size_t)nh, sizeof *csc))) {
        hp_errf(&e, "out of memory");
        goto done;
    }
    /* Words whose first token another word took: listed in a file beside the ranking. */
    if (hp_score_concept(m, &r, concept_path, control, &so, &dopt, shared_path, ro.quiet, &dict, sc, csc, &e))
        goto done;
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", model_path);
    cJSON_AddStringToObject(j, "data", ro.data ? ro.data : ro.v.images);
    cJSON_AddStringToObject(j, "concept", concept_name);
    if (ro.v.images) {
        cJSON_AddStringToObject(j, "prompt_kind", ro.v.prompt ? "custom" : ro.v.prompt_kind);
        cJSON_AddStringToObject(j, "prompt", user_text);
        cJSON *cj = cJSON_AddArrayToObject(j, "classes");
        for (int i = 0; i < set.n_classes; i++) cJSON_AddItemToArray(cj, cJSON_CreateString(set.classes[i]));
    }
    cJSON_AddNumberToObject(j, "samples", r.N);
    cJSON_AddNumberToObject(j, "k", so.k);
    cJSON_AddStringToObject(j, "positions", ro.positions);
    cJSON_AddBoolToObject(j, "center", so.center);
    cJSON_AddBoolToObject(j, "fold_norm", dopt.fold_norm);
    cJSON_AddBoolToObject(j, "normalize_atoms", dopt.normalize);
    cJSON_AddBoolToObject(j, "chat", ro.chat);
    if (control) cJSON_AddStringToObject(j, "control", control);
    hp_ranking_out ro_out = {.json = out, .csv = csv_path, .svg = svg_path, .concept_name = concept_name,
                             .has_control = control != NULL, .somp_k = so.k, .samples = r.N};
    cJSON *meta = j;
    j = NULL;
    if (hp_ranking_write(m, meta, sc, csc, &dict, &ro_out, order_s, &e)) goto done;
    if (!ro.quiet) {
        fprintf(stderr, "wrote %s, %s, %s, %s\n", out, csv_path, svg_path, shared_path);
        printf("top heads for %s (SOMP EVR, k = %d):\n", concept_name, so.k);
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
    free(order_s);
    free(csv_path);
    free(svg_path);
    free(shared_path);
    hp_dict_free(&dict);
    hp_reps_free(&r);
    hp_imageset_free(&set);
    if (classes_tmp) unlink(classes_tmp);
    free(classes_tmp);
    free(user_text);
    close_model(m, lv);
    return rc;
}

int cmd_heads(int argc, char **argv) {
    static const char CMD[] = "heads";
    static const struct option lo[] = {
        {"data", required_argument, 0, R_DATA},   {"vocab", required_argument, 0, R_VOCAB},
        {"out", required_argument, 0, R_OUT},     {"reps", required_argument, 0, R_REPS},
        {"positions", required_argument, 0, R_POS}, {"center", no_argument, 0, R_CENTER},
        {"fold-norm", no_argument, 0, R_FOLD},    {"normalize-atoms", no_argument, 0, R_NORMAL},
        {"limit", required_argument, 0, R_LIMIT}, {"batch", required_argument, 0, R_BATCH},
        {"device", required_argument, 0, R_DEVICE}, {"no-chat", no_argument, 0, R_NOCHAT},
        {"quiet", no_argument, 0, R_QUIET},       {"show", required_argument, 0, R_SHOW},
        {"heads", required_argument, 0, R_HEADS}, {"help", no_argument, 0, R_HELP},
        {"max-prompt-tokens", required_argument, 0, R_MAXPROMPT}, VISION_LONGOPTS, {0}};
    rep_opts ro = {.device = "auto", .batch = 16, .chat = 1, .v = {.prompt_kind = "classify", .object = "object"}};
    const char *vocab = "full", *out = NULL, *heads = NULL;
    hp_somp_opts so = {.k = 50};
    hp_dict_opts dopt = {0};
    int show = 8, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:", lo, NULL)) != -1) {
        switch (c) {
        case R_VOCAB: vocab = optarg; break;
        case R_OUT: out = optarg; break;
        case R_SHOW:
            if (hp_opt_int(CMD, "--show", optarg, 0, INT_MAX, &show)) return 2;
            break;
        case R_HEADS: heads = optarg; break;
        case R_HELP:
            printf("usage: headpursuit heads MODEL --data FILE [--vocab full|WORDS.txt] [-k 50] [--show 8]\n"
                   "                [--heads L.H,...] [--out heads.json] [--reps FILE]\n"
                   "What each head writes (PAPER.md Table 1): SOMP over the whole unembedding (or a word\n"
                   "list), printing each head's first tokens and its explained variance.\n"
                   "  --heads L.H,...   only these heads (default: all)\n"
                   "  --show N          tokens printed per head (default 8)\n"
                   "  other options as for rank (--positions, --center, --fold-norm, --normalize-atoms,\n"
                   "  --limit, --batch, --no-chat, --device)\n"
                   "  --max-prompt-tokens N  refuse (naming the record) a prompt of more than N tokens\n"
                   "                    (default: the model's context length, if known)\n%s", VISION_HELP);
            return 0;
        default: {
            int t = rep_option(c, &ro, &so, &dopt, CMD);
            if (t > 0) break;
            if (t < 0) return 2;
            if (c >= R_IMAGES && c <= R_OFFSET) {
                if (vision_option(c, &ro.v, CMD)) break;
                return 2;
            }
            return hp_opt_unknown(CMD);
        }
        }
    }
    if (hp_opt_one_arg(CMD, "MODEL", argc, argv) || bad_source(CMD, &ro) || check_rep_inputs(CMD, &ro) ||
        (strcmp(vocab, "full") && hp_opt_words_file(CMD, "--vocab", vocab)))
        return 2;
    if (!ro.positions) ro.positions = ro.v.images ? "image" : "prompt";
    if (bad_positions(CMD, &ro)) return 2;
    ro.v.limit = ro.limit;
    const char *model_path = argv[optind];
    hp_err e = {0};
    hp_llava *lv;
    hp_model *m = open_model(model_path, &ro, &lv, &e);
    if (!m) return hp_cli_fail(&e);
    hp_imageset set = {0};
    so.backend = m->be->name; /* SOMP on the GPU when the model is there */
    hp_reps r = {0}, sub = {0};
    hp_dict full = {0}, dict = {0};
    hp_head_score *sc = NULL;
    cJSON *j = NULL;
    int rc = 1, nsel = 0;
    int *sel = NULL;
    if (ro.v.images ? hp_vision_dataset(&ro.v, &set, &e) || get_reps_vision(lv, &set, model_path, &ro, &r, &e)
                    : get_reps(m, model_path, &ro, &r, &e))
        goto done;
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
            cJSON *tj = hp_token_json(m, id, use->label ? use->label[s->support[t]] : NULL);
            if (t < show) printf(" %s", cJSON_GetObjectItem(tj, "text")->valuestring);
            cJSON_AddItemToArray(toks, tj);
        }
        printf("\n");
        cJSON_AddItemToArray(j, o);
    }
    if (out && hp_write_json(out, j, &e)) goto done;
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
    hp_imageset_free(&set);
    close_model(m, lv);
    return rc;
}
