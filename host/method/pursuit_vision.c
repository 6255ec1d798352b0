/* pursuit_vision.c: head representations of LLaVA-NeXT prompts with one image each (PAPER.md §1:
 * mean of c[l,h] over the image-patch tokens, or another position set), the paper's
 * classification and captioning prompts, and opening a LLaVA model for the pursuit commands. */
#include "pursuit.h"

#include "fileio.h"
#include "imageset.h"
#include "llava.h"
#include "progress.h"
#include "safetensors_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int hp_vpos_parse(const char *s) {
    if (!strcmp(s, "image")) return HP_VPOS_IMAGE;
    if (!strcmp(s, "text") || !strcmp(s, "prompt")) return HP_VPOS_TEXT;
    if (!strcmp(s, "last")) return HP_VPOS_LAST;
    if (!strcmp(s, "all")) return HP_VPOS_ALL;
    return -1;
}

const char *hp_vpos_name(hp_vpos p) {
    static const char *const names[] = {"image", "text", "last", "all"};
    return names[p];
}

int hp_vision_dataset(const hp_vision_opts *o, hp_imageset *s, hp_err *e) {
    if (hp_imageset_open(o->images, o->labels, o->captions, s, e)) return -1;
    if ((o->classes && hp_imageset_set_classes(s, o->classes, e)) ||
        ((o->offset > 0 || o->limit > 0) && hp_imageset_select(s, o->offset, o->limit, e))) {
        hp_imageset_free(s);
        return -1;
    }
    return 0;
}

char *hp_vision_user_text(const hp_vision_opts *o, const hp_imageset *s, hp_err *e) {
    char *out = NULL;
    if (o->prompt) out = strdup(o->prompt);
    else if (!strcmp(o->prompt_kind, "caption")) out = strdup(HP_CAPTION_PROMPT);
    else if (strcmp(o->prompt_kind, "classify")) {
        hp_errf(e, "--prompt-kind: '%s' is not classify or caption", o->prompt_kind);
        return NULL;
    } else if (s->n_classes == 0) {
        hp_errf(e, "%s: the classification prompt needs class names (class folders or an IDX labels file); "
                   "for unlabelled images use --prompt-kind caption or --prompt", s->source);
        return NULL;
    } else {
        size_t len = 1;
        for (int c = 0; c < s->n_classes; c++) len += strlen(s->classes[c]) + 2;
        char *list = malloc(len);
        if (list) {
            list[0] = 0;
            for (int c = 0; c < s->n_classes; c++) {
                if (c) strcat(list, ", ");
                strcat(list, s->classes[c]);
            }
            if (asprintf(&out, HP_CLASSIFY_PROMPT, o->object, list) < 0) out = NULL;
            free(list);
        }
    }
    if (!out) hp_errf(e, "out of memory");
    return out;
}

int hp_llava_sample(const hp_llava *lv, const hp_imageset *s, int i, const char *user_text, int32_t **ids,
                    int *n, hp_inject *inj, hp_err *e) {
    hp_image im;
    hp_pixels px = {0};
    *ids = NULL;
    memset(inj, 0, sizeof *inj);
    if (hp_imageset_image(s, i, &im, e)) return -1;
    int rc = hp_llava_preprocess(&im, &lv->proc, &px, e);
    hp_image_free(&im);
    if (!rc) rc = hp_llava_prompt(lv, user_text, &px, ids, n, inj, e);
    hp_pixels_free(&px);
    if (rc) {
        char msg[sizeof e->msg];
        snprintf(msg, sizeof msg, "%s", e->msg);
        return hp_errf(e, "image %s of %s: %s", s->name[i], s->source, msg);
    }
    return 0;
}

int hp_reps_capture_llava(hp_llava *lv, const hp_imageset *s, const char *const *texts, hp_vpos pos,
                          int batch, int progress, hp_reps *out, hp_err *e) {
    hp_model *m = lv->m;
    const hp_config *c = &m->cfg;
    memset(out, 0, sizeof *out);
    *out = (hp_reps){.L = c->L, .H = c->H, .N = s->n, .D = c->D};
    size_t per = (size_t)c->L * c->H * c->D, total;
    if (batch < 1) batch = 1;
    if (!hp_mul_ok(per, (size_t)s->n, &total)) return hp_errf(e, "representation size overflows");
    out->h = malloc(total * sizeof(float));
    int32_t **ids = calloc((size_t)batch, sizeof *ids);
    int *len = calloc((size_t)batch, sizeof *len);
    hp_inject *inj = calloc((size_t)batch, sizeof *inj);
    float *cap = malloc(sizeof(float) * per * batch);
    int32_t *tid = NULL, *tseq = NULL, *tpos = NULL, *rows = NULL; /* one batch, packed */
    float *w = NULL, *emb = NULL;
    hp_runtime *rt = NULL;
    int rc = -1, nb = 0;
    if (!out->h || !ids || !len || !inj || !cap) {
        hp_errf(e, "out of memory (head representations: %zu MiB)", total * 4 >> 20);
        goto done;
    }
    hp_progress pb;
    hp_progress_start(&pb, "capture", s->n, "images", progress);
    for (int b0 = 0; b0 < s->n; b0 += batch) {
        nb = s->n - b0 < batch ? s->n - b0 : batch;
        size_t T = 0, n_inj = 0;
        int maxlen = 0;
        for (int b = 0; b < nb; b++) {
            if (hp_llava_sample(lv, s, b0 + b, texts[b0 + b], &ids[b], &len[b], &inj[b], e)) goto done;
            T += (size_t)len[b];
            n_inj += (size_t)inj[b].n;
            if (len[b] > maxlen) maxlen = len[b];
        }
        if (!rt || maxlen > rt->Tcap) { /* image token counts vary with the aspect ratio */
            hp_runtime_free(rt);
            if (!(rt = hp_runtime_create(m, batch, maxlen, 512, batch, e))) goto done;
        }
        if (T > INT32_MAX) {
            hp_errf(e, "capture batch of %zu tokens is too large: lower --batch", T);
            goto done;
        }
        free(tid), free(tseq), free(tpos), free(w), free(rows), free(emb);
        tid = malloc(sizeof *tid * T), tseq = malloc(sizeof *tseq * T), tpos = malloc(sizeof *tpos * T);
        w = malloc(sizeof *w * T), rows = malloc(sizeof *rows * (n_inj + 1));
        emb = malloc(sizeof *emb * (n_inj + 1) * c->D);
        if (!tid || !tseq || !tpos || !w || !rows || !emb) {
            hp_errf(e, "out of memory (capture batch of %zu tokens)", T);
            goto done;
        }
        size_t t = 0, r = 0;
        for (int b = 0; b < nb; b++) {
            /* Image positions of this prompt are inj[b].pos (ascending); the weights average over
             * the chosen set. */
            int n = len[b], ni = inj[b].n, count = pos == HP_VPOS_IMAGE ? ni : pos == HP_VPOS_TEXT ? n - ni
                                                                       : pos == HP_VPOS_LAST  ? 1 : n;
            if (count <= 0) {
                hp_errf(e, "image %s: no %s positions in its prompt", s->name[b0 + b], hp_vpos_name(pos));
                goto done;
            }
            size_t t0 = t;
            for (int i = 0; i < n; i++, t++) {
                tid[t] = ids[b][i];
                tseq[t] = b;
                tpos[t] = i;
                w[t] = pos == HP_VPOS_IMAGE || pos == HP_VPOS_LAST ? 0.0f : 1.0f / (float)count;
            }
            if (pos == HP_VPOS_LAST) w[t - 1] = 1.0f;
            for (int i = 0; i < ni; i++, r++) {
                size_t at = t0 + (size_t)inj[b].pos[i];
                rows[r] = (int32_t)at;
                w[at] = pos == HP_VPOS_IMAGE ? 1.0f / (float)count : pos == HP_VPOS_TEXT ? 0.0f : w[at];
                memcpy(emb + r * c->D, inj[b].emb + (size_t)i * c->D, sizeof(float) * c->D);
            }
        }
        memset(cap, 0, sizeof(float) * per * nb);
        hp_fwd f = {.T = (int)T, .ids = tid, .seq = tseq, .pos = tpos, .n_inject = (int)n_inj,
                    .inject_rows = rows, .inject = emb, .cap_w = w, .cap_B = nb, .cap_out = cap};
        if (hp_forward(rt, &f, e)) goto done;
        for (int b = 0; b < nb; b++)
            for (int lh = 0; lh < c->L * c->H; lh++)
                memcpy(out->h + ((size_t)lh * s->n + b0 + b) * c->D, cap + (size_t)b * per + (size_t)lh * c->D,
                       sizeof(float) * c->D);
        for (int b = 0; b < nb; b++) {
            free(ids[b]);
            ids[b] = NULL;
            hp_llava_inject_free(&inj[b]);
        }
        hp_progress_update(&pb, b0 + nb);
    }
    hp_progress_end(&pb);
    rc = 0;
done:
    for (int b = 0; ids && inj && b < batch; b++) {
        free(ids[b]);
        hp_llava_inject_free(&inj[b]);
    }
    free(ids);
    free(len);
    free(inj);
    free(cap);
    free(tid);
    free(tseq);
    free(tpos);
    free(rows);
    free(w);
    free(emb);
    hp_runtime_free(rt);
    if (rc) hp_reps_free(out);
    return rc;
}

hp_llava *hp_vision_open(const char *path, const char *device, int quiet, hp_err *e) {
    hp_backend *be = hp_backend_create(device, e);
    if (!be) return NULL;
    double t0 = hp_now();
    hp_llava *lv = hp_llava_load(path, be, e);
    if (!lv) {
        be->destroy(be);
        return NULL;
    }
    if (!quiet)
        fprintf(stderr, "loaded %s: LLaVA-NeXT (%s, %d layers x %d heads; CLIP %d layers) on %s in %.1fs\n", path,
                lv->m->cfg.arch_name, lv->m->cfg.L, lv->m->cfg.H, lv->cfg.vis.L, be->desc, hp_now() - t0);
    return lv;
}

void hp_vision_close(hp_llava *lv) {
    if (!lv) return;
    hp_backend *be = lv->m->be;
    hp_llava_free(lv);
    be->destroy(be);
}

int hp_vision_classes_file(const hp_imageset *s, char **path, hp_err *e) {
    const char *dir = getenv("TMPDIR");
    if (asprintf(path, "%s/hp_classes_XXXXXX", dir && *dir ? dir : "/tmp") < 0) {
        *path = NULL;
        return hp_errf(e, "out of memory");
    }
    int fd = mkstemp(*path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        hp_errf(e, "%s: cannot create: %s", *path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(*path);
        }
        free(*path);
        *path = NULL;
        return -1;
    }
    int bad = 0;
    for (int c = 0; c < s->n_classes; c++) bad |= fprintf(f, "%s\n", s->classes[c]) < 0;
    bad |= fclose(f) != 0;
    if (bad) {
        unlink(*path);
        hp_errf(e, "%s: write failed", *path);
        free(*path);
        *path = NULL;
        return -1;
    }
    return 0;
}
