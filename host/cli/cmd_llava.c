/* cmd_llava.c: LLaVA-NeXT debug and parity commands on an image file (through the C image
 * processor) or on preprocessed pixel tiles (a .npy as transformers' image processor gives them,
 * which keeps the model's parity independent of the image processor):
 *   llava-features  the vision tower's selected hidden state, or the packed image features
 *   llava-logits    logits of a prompt whose image token(s) get the image features */
#include "cli.h"
#include "commands.h"
#include "fileio.h"
#include "llava.h"
#include "npy.h"
#include "progress.h"

#include <cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { L_PIXELS = 1000, L_IMAGE, L_SIZE, L_STAGE, L_OUT, L_DEVICE, L_IDS, L_IDS_FILE, L_TEXT, L_HEADS,
       L_ALPHA, L_QUIET, L_HELP };

typedef struct llava_opts {
    const char *pixels, *image, *size, *stage, *out, *device, *ids, *ids_file, *text, *heads;
    float alpha;
    int quiet, device_set;
} llava_opts;

static const struct option llava_longopts[] = {
    {"pixels", required_argument, 0, L_PIXELS}, {"image", required_argument, 0, L_IMAGE},
    {"image-size", required_argument, 0, L_SIZE},
    {"stage", required_argument, 0, L_STAGE},   {"out", required_argument, 0, L_OUT},
    {"device", required_argument, 0, L_DEVICE}, {"ids", required_argument, 0, L_IDS},
    {"ids-file", required_argument, 0, L_IDS_FILE}, {"text", required_argument, 0, L_TEXT},
    {"heads", required_argument, 0, L_HEADS},
    {"alpha", required_argument, 0, L_ALPHA},   {"quiet", no_argument, 0, L_QUIET},
    {"help", no_argument, 0, L_HELP},           {0}};

static const char *PIXELS_HELP =
    "  --image IMG       a PNG or JPEG, preprocessed as LlavaNextImageProcessor does; or:\n"
    "  --pixels P.npy    float32 tiles [n_tiles, 3, S, S] (or [1, n_tiles, 3, S, S]), normalised,\n"
    "                    base tile first: transformers' LlavaNextImageProcessor pixel_values\n"
    "  --image-size H,W  the original image's height and width (its image_sizes entry)\n"
    "  --out F.npy       output file (float32)\n"
    "  --quiet           no log lines on stderr\n"
    "  --help            this text\n";

/* Parses argv; returns -1 after printing help (exit 0), 1 on a bad option or input file (said
 * why), 0 otherwise. */
static int parse(int argc, char **argv, llava_opts *o, const char *help, const char *cmd) {
    memset(o, 0, sizeof *o);
    o->device = "auto";
    o->alpha = -1.0f;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", llava_longopts, NULL)) != -1) {
        switch (c) {
        case L_PIXELS: o->pixels = optarg; break;
        case L_IMAGE: o->image = optarg; break;
        case L_SIZE: o->size = optarg; break;
        case L_STAGE: o->stage = optarg; break;
        case L_OUT: o->out = optarg; break;
        case L_DEVICE: o->device = optarg, o->device_set = 1; break;
        case L_IDS: o->ids = optarg; break;
        case L_IDS_FILE: o->ids_file = optarg; break;
        case L_TEXT: o->text = optarg; break;
        case L_HEADS: o->heads = optarg; break;
        case L_ALPHA:
            if (hp_opt_float(cmd, "--alpha", optarg, -HUGE_VAL, HUGE_VAL, &o->alpha)) return 1;
            break;
        case L_QUIET: o->quiet = 1; break;
        case L_HELP: printf("%s%s", help, PIXELS_HELP); return -1;
        default: hp_opt_unknown(cmd); return 1;
        }
    }
    if (hp_opt_one_arg(cmd, "MODEL", argc, argv)) return 1;
    if (o->image ? o->pixels || o->size : !o->pixels || !o->size) {
        fprintf(stderr, "headpursuit %s: give --image IMG, or --pixels P.npy with --image-size H,W (see headpursuit %s --help)\n",
                cmd, cmd);
        return 1;
    }
    if (!o->out) {
        fprintf(stderr, "headpursuit %s: need --out F.npy (see headpursuit %s --help)\n", cmd, cmd);
        return 1;
    }
    if (o->size) {
        char *end;
        long h = strtol(o->size, &end, 10), w = *end == ',' ? strtol(end + 1, &end, 10) : -1;
        if (*end || h <= 0 || w <= 0 || h > 1000000 || w > 1000000) {
            fprintf(stderr, "headpursuit %s: --image-size '%s': expected HEIGHT,WIDTH (integers 1..1000000)\n", cmd,
                    o->size);
            return 1;
        }
    }
    /* Input files, before any weights load. */
    if ((o->image && hp_opt_input(cmd, "--image", o->image, 0)) || (o->pixels && hp_opt_input(cmd, "--pixels", o->pixels, 0)) ||
        (o->ids_file && hp_opt_input(cmd, "--ids-file", o->ids_file, 0)))
        return 1;
    return 0;
}

/* --image, or --pixels and --image-size, into an hp_pixels (free with hp_pixels_free). */
static int read_pixels(const llava_opts *o, const hp_llava *lv, hp_pixels *px, hp_err *e) {
    memset(px, 0, sizeof *px);
    if (o->image) {
        hp_image im;
        if (hp_image_load(o->image, &im, e)) return -1;
        int rc = hp_llava_preprocess(&im, &lv->proc, px, e);
        hp_image_free(&im);
        return rc;
    }
    char *end;
    long h = strtol(o->size, &end, 10), w = *end == ',' ? strtol(end + 1, &end, 10) : -1;
    if (*end || h <= 0 || w <= 0 || h > 1000000 || w > 1000000)
        return hp_errf(e, "--image-size: expected HEIGHT,WIDTH (positive integers), got '%s'", o->size);
    int ndim;
    int64_t shape[HP_NPY_MAXDIM];
    if (hp_npy_read_f32(o->pixels, &px->data, &ndim, shape, e)) return -1;
    const int64_t *s = shape;
    if (ndim == 5 && shape[0] == 1) s++, ndim--;
    const hp_clip_config *v = &lv->cfg.vis;
    if (ndim != 4 || s[1] != v->C || s[2] != v->S || s[3] != v->S || s[0] < 1 || s[0] > 4096) {
        free(px->data);
        px->data = NULL;
        return hp_errf(e, "%s: expected float tiles [n_tiles, %d, %d, %d] (optionally with a leading 1)",
                       o->pixels, v->C, v->S, v->S);
    }
    px->n_tiles = (int)s[0];
    px->size = v->S;
    px->orig_h = (int)h;
    px->orig_w = (int)w;
    return 0;
}

/* ---------------------------------------------------------------- llava-features */
int cmd_llava_features(int argc, char **argv) {
    llava_opts o;
    int pr = parse(argc, argv, &o,
                   "usage: headpursuit llava-features MODEL (--image IMG | --pixels P.npy --image-size H,W)\n"
                   "                      --out F.npy [--stage tower|packed] [--device cpu|cuda|auto]\n"
                   "The LLaVA-NeXT vision side on one image. packed (default): the image\n"
                   "features that replace the image tokens, [n_image_tokens, D_text] (projector, anyres\n"
                   "unpadding, image_newline). tower: CLIP's selected hidden state before the projector,\n"
                   "[n_tiles, rows, D_vision]. Only the vision weights are loaded.\n"
                   "  --device D        where the tower and projector run (default cpu: float32, the\n"
                   "                    reference; cuda: bf16 kernels; auto: cuda when there is one)\n",
                   "llava-features");
    if (pr < 0) return 0;
    if (pr) return 2;
    int tower = o.stage && !strcmp(o.stage, "tower");
    if (o.stage && !tower && strcmp(o.stage, "packed")) {
        fprintf(stderr, "headpursuit llava-features: --stage '%s': expected tower or packed\n", o.stage);
        return 2;
    }
    if (o.ids || o.ids_file || o.text || o.heads) {
        fprintf(stderr, "headpursuit llava-features: --ids, --ids-file, --text and --heads are llava-logits options\n");
        return 2;
    }
    hp_err e = {0};
    double t0 = hp_now();
    hp_backend *be = hp_backend_create(o.device_set ? o.device : "cpu", &e);
    if (!be) return hp_cli_fail(&e);
    hp_llava *lv = hp_llava_open(argv[optind], NULL, be, &e);
    if (!lv) {
        be->destroy(be);
        return hp_cli_fail(&e);
    }
    hp_pixels px = {0};
    float *out = NULL;
    int rc = 1, n = 0;
    if (read_pixels(&o, lv, &px, &e)) goto done;
    const hp_llava_config *c = &lv->cfg;
    if (tower) {
        size_t rows = (size_t)px.n_tiles * c->P_sel;
        out = malloc(sizeof(float) * rows * c->vis.D);
        if (!out) {
            hp_errf(&e, "out of memory");
            goto done;
        }
        if (hp_llava_tower(lv, px.data, px.n_tiles, out, &e)) goto done;
        int64_t shape[3] = {px.n_tiles, c->P_sel, c->vis.D};
        if (hp_npy_write_f32(o.out, out, 3, shape, &e)) goto done;
    } else {
        if (hp_llava_image_features(lv, &px, &out, &n, &e)) goto done;
        int64_t shape[2] = {n, c->Dt};
        if (hp_npy_write_f32(o.out, out, 2, shape, &e)) goto done;
    }
    if (!o.quiet) {
        fprintf(stderr, "image %dx%d, %d tiles of %dx%d", px.orig_h, px.orig_w, px.n_tiles, c->vis.S,
                c->vis.S);
        if (!tower) fprintf(stderr, ", %d image tokens", n);
        fprintf(stderr, "; wrote %s in %.1fs\n", o.out, hp_now() - t0);
    }
    rc = 0;
done:
    if (rc) hp_cli_fail(&e);
    free(out);
    hp_pixels_free(&px);
    hp_llava_free(lv);
    be->destroy(be);
    return rc;
}

/* ids.json: [1, 2, 3] or [[1, 2, 3]] (one prompt). */
static int read_ids_json(hp_prompts *p, const char *path, hp_err *e) {
    cJSON *root = hp_read_json(path, e);
    if (!root) return -1;
    const cJSON *list = root;
    if (cJSON_IsArray(root) && cJSON_GetArraySize(root) == 1 && cJSON_IsArray(root->child))
        list = root->child;
    int n = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : 0, i = 0;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    int rc = 0;
    if (!ids) rc = hp_errf(e, "out of memory");
    else if (n == 0) rc = hp_errf(e, "%s: expected a non-empty list of token ids (or a list holding one)", path);
    for (const cJSON *v = list->child; !rc && v; v = v->next, i++) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > INT32_MAX ||
            v->valuedouble != (double)(int32_t)v->valuedouble)
            rc = hp_errf(e, "%s: item %d is not a token id", path, i);
        else
            ids[i] = (int32_t)v->valuedouble;
    }
    if (!rc) rc = hp_prompts_add(p, ids, n, e);
    free(ids);
    cJSON_Delete(root);
    return rc;
}

/* ---------------------------------------------------------------- llava-logits */
int cmd_llava_logits(int argc, char **argv) {
    llava_opts o;
    int pr = parse(argc, argv, &o,
                   "usage: headpursuit llava-logits MODEL (--image IMG | --pixels P.npy --image-size H,W)\n"
                   "                     (--text T | --ids 1,2,3 | --ids-file ids.json) --out L.npy\n"
                   "                     [--heads L.H,... --alpha A]\n"
                   "Float32 logits [T, V] of every position of one prompt with one image; the image\n"
                   "tokens' embeddings are the packed image features. --text: the llava-v1.6-mistral\n"
                   "prompt \"[INST] <image>\\n<T> [/INST]\" with BOS (needs tokenizer.json). --ids /\n"
                   "--ids-file: the image token (image_token_index) either once, expanded here to the\n"
                   "image's feature count, or already expanded to exactly that many copies (as\n"
                   "transformers' processor writes them); T counts the expanded prompt. ids.json: a\n"
                   "list of ids or a list holding one list.\n"
                   "  --device D        the backend of the language model and the vision tower: auto,\n"
                   "                    cpu or cuda\n"
                   "  --heads L.H,...   edit these heads of the language model by --alpha (default -1)\n",
                   "llava-logits");
    if (pr < 0) return 0;
    if (pr) return 2;
    if (o.stage) {
        fprintf(stderr, "headpursuit llava-logits: --stage is a llava-features option\n");
        return 2;
    }
    if (!!o.ids + !!o.ids_file + !!o.text != 1) {
        fprintf(stderr, "headpursuit llava-logits: give exactly one of --text T, --ids 1,2,3 or --ids-file ids.json\n");
        return 2;
    }
    hp_err e = {0};
    hp_backend *be = hp_backend_create(o.device, &e);
    if (!be) return hp_cli_fail(&e);
    double t0 = hp_now();
    hp_llava *lv = hp_llava_load(argv[optind], be, &e);
    if (!lv) {
        be->destroy(be);
        return hp_cli_fail(&e);
    }
    hp_model *m = lv->m;
    if (!o.quiet)
        fprintf(stderr, "loaded %s: LLaVA-NeXT (%s, %d layers x %d heads; CLIP %d layers) on %s in %.1fs\n",
                argv[optind], m->cfg.arch_name, m->cfg.L, m->cfg.H, lv->cfg.vis.L, be->desc,
                hp_now() - t0);
    hp_pixels px = {0};
    hp_prompts p = {0};
    hp_runtime *rt = NULL;
    float *feats = NULL, *logits = NULL;
    int32_t *ids = NULL, *pos = NULL, *rows = NULL, *seq = NULL, *tpos = NULL;
    int rc = 1, nf = 0, T = 0;
    if (read_pixels(&o, lv, &px, &e)) goto done;
    if (o.ids && hp_prompts_add_csv(&p, o.ids, &e)) goto done;
    if (o.ids_file && read_ids_json(&p, o.ids_file, &e)) goto done;
    if (o.heads && hp_cli_apply_heads(m, o.heads, o.alpha, &e)) goto done;
    if (o.text) {
        hp_inject inj;
        if (hp_llava_prompt(lv, o.text, &px, &ids, &T, &inj, &e)) goto done;
        nf = inj.n;
        pos = (int32_t *)inj.pos; /* owned here from now on */
        feats = (float *)inj.emb;
    } else {
        if (hp_llava_image_features(lv, &px, &feats, &nf, &e)) goto done;
        if (hp_llava_expand(lv, p.ids[0], p.len[0], nf, &ids, &T, &pos, &e)) goto done;
    }
    /* the expanded prompt (image tokens included) within the language model's context */
    if (hp_prompt_fits(T, hp_prompt_cap(m, 0), o.text ? "--text" : o.ids ? "--ids" : o.ids_file, &e))
        goto done;
    int V = m->cfg.V;
    rt = hp_runtime_create(m, 1, T, T < 256 ? T : 256, 0, &e);
    logits = malloc(sizeof(float) * (size_t)T * V);
    rows = malloc(sizeof(int32_t) * (size_t)T);
    seq = calloc((size_t)T, sizeof(int32_t));
    tpos = malloc(sizeof(int32_t) * (size_t)T);
    if (!rt || !logits || !rows || !seq || !tpos) {
        if (!e.msg[0]) hp_errf(&e, "out of memory");
        goto done;
    }
    for (int t = 0; t < T; t++) rows[t] = tpos[t] = t;
    hp_fwd f = {.T = T, .ids = ids, .seq = seq, .pos = tpos, .n_inject = nf, .inject_rows = pos,
                .inject = feats, .n_logits = T, .logit_rows = rows, .logits_out = logits};
    if (hp_forward(rt, &f, &e)) goto done;
    int64_t shape[2] = {T, V};
    if (hp_npy_write_f32(o.out, logits, 2, shape, &e)) goto done;
    if (!o.quiet) fprintf(stderr, "%d image tokens, %d positions; wrote %s\n", nf, T, o.out);
    rc = 0;
done:
    if (rc) hp_cli_fail(&e);
    free(feats);
    free(logits);
    free(ids);
    free(pos);
    free(rows);
    free(seq);
    free(tpos);
    hp_pixels_free(&px);
    hp_runtime_free(rt);
    hp_prompts_free(&p);
    hp_llava_free(lv);
    be->destroy(be);
    return rc;
}
