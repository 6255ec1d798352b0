/* imageset.c: image-folder, IDX (gzip through zlib) and Flickr30k caption readers. */
#include "imageset.h"

#include "dataset.h"
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

/* Decompressed IDX files larger than this are refused (MNIST's largest is 47 MB). */
#define IDX_MAX_BYTES ((size_t)8 << 30)
/* Folder recursion depth inside a class folder (ImageFolder walks without limit; cycles through
 * symbolic links must end somewhere). */
#define MAX_DEPTH 16

/* ------------------------------------------------------------------ growing string lists */

typedef struct strvec {
    char **s;
    int n, cap;
} strvec;

static int sv_push(strvec *v, char *s, hp_err *e) {
    if (!s) return hp_errf(e, "out of memory");
    if (v->n == v->cap) {
        int cap = v->cap ? 2 * v->cap : 16;
        char **t = realloc(v->s, sizeof(char *) * (size_t)cap);
        if (!t) {
            free(s);
            return hp_errf(e, "out of memory");
        }
        v->s = t;
        v->cap = cap;
    }
    v->s[v->n++] = s;
    return 0;
}

static void sv_free(strvec *v) {
    for (int i = 0; i < v->n; i++) free(v->s[i]);
    free(v->s);
    memset(v, 0, sizeof *v);
}

static char *join(const char *a, const char *b) {
    char *p = NULL;
    return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* ------------------------------------------------------------------ IDX */

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Reads up to n bytes; *got is what arrived. Returns -1 with e set on a zlib error. */
static int gz_read(gzFile f, const char *path, size_t at, void *buf, size_t n, size_t *got, hp_err *e) {
    *got = 0;
    while (*got < n) {
        size_t chunk = n - *got < (1u << 30) ? n - *got : (1u << 30);
        int r = gzread(f, (char *)buf + *got, (unsigned)chunk);
        if (r < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            size_t pl = strlen(path); /* zlib writes "<path>: <what>" */
            if (msg && !strncmp(msg, path, pl) && !strncmp(msg + pl, ": ", 2)) msg += pl + 2;
            return hp_errf(e, "%s: %s data corrupt near offset %zu%s: %s", path, gzdirect(f) ? "file" : "gzip",
                           at + *got, gzdirect(f) ? "" : " (after gunzip)", msg ? msg : "read error");
        }
        if (r == 0) break;
        *got += (size_t)r;
    }
    return 0;
}

int hp_idx_read(const char *path, uint32_t expect_magic, hp_idx *out, hp_err *e) {
    memset(out, 0, sizeof *out);
    gzFile f = gzopen(path, "rb");
    if (!f) return hp_errf(e, "%s: cannot open: %s", path, strerror(errno ? errno : ENOMEM));
    gzbuffer(f, 1 << 17);
    unsigned char hdr[4 + 4 * HP_IDX_MAX_DIMS];
    size_t got;
    int rc = -1;
    const char *unz = gzdirect(f) ? "" : " (after gunzip)";
    if (gz_read(f, path, 0, hdr, 4, &got, e)) goto done;
    if (got < 4) {
        hp_errf(e, "%s: truncated at offset %zu%s: an IDX file starts with a 4-byte magic", path, got, unz);
        goto done;
    }
    uint32_t magic = be32(hdr);
    if (hdr[0] || hdr[1] || hdr[3] < 1 || hdr[3] > HP_IDX_MAX_DIMS) {
        hp_errf(e, "%s: offset 0: magic 0x%08x is not an IDX header (00 00 type ndim, ndim 1..%d)%s", path,
                magic, HP_IDX_MAX_DIMS, unz);
        goto done;
    }
    if (hdr[2] != 0x08) {
        hp_errf(e, "%s: offset 2: element type 0x%02x is not supported (only 0x08, unsigned bytes)", path, hdr[2]);
        goto done;
    }
    if (expect_magic && magic != expect_magic) {
        hp_errf(e, "%s: offset 0: magic 0x%08x, expected 0x%08x (%s)", path, magic, expect_magic,
                expect_magic == 0x803 ? "IDX images: n x rows x cols bytes"
                : expect_magic == 0x801 ? "IDX labels: n bytes" : "IDX");
        goto done;
    }
    out->ndim = hdr[3];
    size_t hlen = 4 + 4 * (size_t)out->ndim;
    if (gz_read(f, path, 4, hdr + 4, hlen - 4, &got, e)) goto done;
    if (got < hlen - 4) {
        hp_errf(e, "%s: truncated at offset %zu%s: the header needs %zu bytes for %d dimensions", path, 4 + got,
                unz, hlen, out->ndim);
        goto done;
    }
    out->n = 1;
    for (int i = 0; i < out->ndim; i++) {
        uint32_t d = be32(hdr + 4 + 4 * i);
        if (d > INT32_MAX || !hp_mul_ok(out->n, d, &out->n) || out->n > IDX_MAX_BYTES) {
            hp_errf(e, "%s: offset %d: dimension %d = %u makes the data larger than %zu GiB", path, 4 + 4 * i, i,
                    d, IDX_MAX_BYTES >> 30);
            goto done;
        }
        out->dims[i] = (int)d;
    }
    out->data = malloc(out->n ? out->n : 1);
    if (!out->data) {
        hp_errf(e, "%s: out of memory (%zu bytes of data)", path, out->n);
        goto done;
    }
    if (gz_read(f, path, hlen, out->data, out->n, &got, e)) goto done;
    if (got < out->n) {
        hp_errf(e, "%s: truncated at offset %zu%s: the header announces %zu data bytes from offset %zu", path,
                hlen + got, unz, out->n, hlen);
        goto done;
    }
    unsigned char extra;
    if (gz_read(f, path, hlen + out->n, &extra, 1, &got, e)) goto done;
    if (got) {
        hp_errf(e, "%s: unexpected bytes after offset %zu%s, where the announced data ends", path, hlen + out->n, unz);
        goto done;
    }
    rc = 0;
done:
    gzclose(f);
    if (rc) hp_idx_free(out);
    return rc;
}

void hp_idx_free(hp_idx *x) {
    free(x->data);
    memset(x, 0, sizeof *x);
}

/* Class names "0", "1", ... */
static int number_classes(hp_imageset *s, int n, hp_err *e) {
    s->classes = calloc((size_t)n, sizeof(char *));
    if (!s->classes) return hp_errf(e, "out of memory");
    s->n_classes = n;
    for (int c = 0; c < n; c++)
        if (asprintf(&s->classes[c], "%d", c) < 0) {
            s->classes[c] = NULL;
            return hp_errf(e, "out of memory");
        }
    return 0;
}

int hp_imageset_load_idx(const char *images, const char *labels, hp_imageset *out, hp_err *e) {
    memset(out, 0, sizeof *out);
    hp_idx im = {0}, lb = {0};
    if (hp_idx_read(images, 0x803, &im, e)) return -1;
    int rc = -1;
    if (im.dims[0] < 1 || im.dims[1] < 1 || im.dims[2] < 1) {
        hp_errf(e, "%s: %d images of %dx%d pixels: nothing to read", images, im.dims[0], im.dims[1], im.dims[2]);
        goto done;
    }
    out->n = im.dims[0];
    out->h = im.dims[1];
    out->w = im.dims[2];
    out->grey = im.data;
    im.data = NULL;
    out->label = malloc(sizeof(int) * (size_t)out->n);
    out->name = calloc((size_t)out->n, sizeof(char *));
    if (!out->label || !out->name || asprintf(&out->source, "%s%s%s", images, labels ? " + " : "",
                                              labels ? labels : "") < 0) {
        out->source = NULL;
        hp_errf(e, "out of memory");
        goto done;
    }
    for (int i = 0; i < out->n; i++) {
        out->label[i] = -1;
        if (asprintf(&out->name[i], "#%d", i) < 0) {
            out->name[i] = NULL;
            hp_errf(e, "out of memory");
            goto done;
        }
    }
    if (labels) {
        if (hp_idx_read(labels, 0x801, &lb, e)) goto done;
        if (lb.dims[0] != out->n) {
            hp_errf(e, "%s: %d labels, but %s holds %d images", labels, lb.dims[0], images, out->n);
            goto done;
        }
        int maxl = 0;
        for (int i = 0; i < out->n; i++) {
            out->label[i] = lb.data[i];
            if (lb.data[i] > maxl) maxl = lb.data[i];
        }
        if (number_classes(out, maxl + 1, e)) goto done;
    }
    rc = 0;
done:
    hp_idx_free(&im);
    hp_idx_free(&lb);
    if (rc) hp_imageset_free(out);
    return rc;
}

/* ------------------------------------------------------------------ folders */

static int is_image_name(const char *n) {
    const char *dot = strrchr(n, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

/* Sorted entries of dir (hidden ones skipped), split into sub-folders and files. */
static int list_dir(const char *dir, strvec *dirs, strvec *files, hp_err *e) {
    DIR *d = opendir(dir);
    if (!d) return hp_errf(e, "%s: cannot open folder: %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char *p = join(dir, de->d_name);
        struct stat st;
        if (!p) rc = hp_errf(e, "out of memory");
        else if (stat(p, &st)) {
            rc = hp_errf(e, "%s: %s", p, strerror(errno));
            free(p);
        } else {
            free(p);
            if (S_ISDIR(st.st_mode)) rc = sv_push(dirs, strdup(de->d_name), e);
            else if (S_ISREG(st.st_mode)) rc = sv_push(files, strdup(de->d_name), e);
        }
    }
    closedir(d);
    qsort(dirs->s, (size_t)dirs->n, sizeof(char *), cmp_str);
    qsort(files->s, (size_t)files->n, sizeof(char *), cmp_str);
    return rc;
}

/* Image files under dir (recursively, sorted), as paths relative to root's parent ("rel"). */
static int collect(const char *dir, const char *rel, int depth, strvec *paths, strvec *names, int *skipped,
                   hp_err *e) {
    if (depth > MAX_DEPTH) return hp_errf(e, "%s: folders nested deeper than %d (a link cycle?)", dir, MAX_DEPTH);
    strvec dirs = {0}, files = {0};
    int rc = list_dir(dir, &dirs, &files, e);
    for (int i = 0; !rc && i < files.n; i++) {
        if (!is_image_name(files.s[i])) {
            (*skipped)++;
            continue;
        }
        rc = sv_push(paths, join(dir, files.s[i]), e);
        if (!rc) rc = sv_push(names, join(rel, files.s[i]), e);
    }
    for (int i = 0; !rc && i < dirs.n; i++) {
        char *sub = join(dir, dirs.s[i]), *subrel = join(rel, dirs.s[i]);
        rc = sub && subrel ? collect(sub, subrel, depth + 1, paths, names, skipped, e) : hp_errf(e, "out of memory");
        free(sub);
        free(subrel);
    }
    sv_free(&dirs);
    sv_free(&files);
    return rc;
}

int hp_imageset_load_folder(const char *dir, hp_imageset *out, hp_err *e) {
    memset(out, 0, sizeof *out);
    strvec dirs = {0}, files = {0}, paths = {0}, names = {0};
    int rc = list_dir(dir, &dirs, &files, e);
    if (rc) goto done;
    int *label = NULL, nl = 0;
    if (dirs.n > 0) { /* classes */
        for (int c = 0; c < dirs.n && !rc; c++) {
            int before = paths.n;
            char *sub = join(dir, dirs.s[c]);
            rc = sub ? collect(sub, dirs.s[c], 0, &paths, &names, &out->n_skipped, e) : hp_errf(e, "out of memory");
            if (!rc && paths.n == before)
                rc = hp_errf(e, "%s: class folder without PNG or JPEG images", sub);
            free(sub);
            int *t = rc ? NULL : realloc(label, sizeof(int) * (size_t)(paths.n ? paths.n : 1));
            if (!rc && !t) rc = hp_errf(e, "out of memory");
            if (rc) break;
            label = t;
            for (; nl < paths.n; nl++) label[nl] = c;
        }
        for (int i = 0; i < files.n; i++) out->n_skipped++; /* loose files beside class folders */
    } else {
        for (int i = 0; i < files.n && !rc; i++) {
            if (!is_image_name(files.s[i])) {
                out->n_skipped++;
                continue;
            }
            rc = sv_push(&paths, join(dir, files.s[i]), e);
            if (!rc) rc = sv_push(&names, strdup(files.s[i]), e);
        }
        if (!rc && paths.n == 0) rc = hp_errf(e, "%s: no PNG or JPEG images and no class folders", dir);
    }
    if (rc) {
        free(label);
        goto done;
    }
    out->n = paths.n;
    out->file = paths.s;
    out->name = names.s;
    paths = (strvec){0};
    names = (strvec){0};
    out->label = label ? label : malloc(sizeof(int) * (size_t)out->n);
    out->source = strdup(dir);
    if (!out->label || !out->source) {
        rc = hp_errf(e, "out of memory");
        goto done;
    }
    if (!label)
        for (int i = 0; i < out->n; i++) out->label[i] = -1;
    else {
        out->n_classes = dirs.n;
        out->classes = dirs.s;
        dirs = (strvec){0};
    }
done:
    sv_free(&dirs);
    sv_free(&files);
    sv_free(&paths);
    sv_free(&names);
    if (rc) hp_imageset_free(out);
    return rc;
}

/* ------------------------------------------------------------------ Flickr30k captions */

int hp_imageset_load_captions(const char *token_file, const char *image_dir, hp_imageset *out, hp_err *e) {
    memset(out, 0, sizeof *out);
    char *text;
    size_t len;
    if (hp_read_file(token_file, &text, &len, e)) return -1;
    long bad = hp_utf8_invalid_at(text, len);
    if (bad >= 0) {
        free(text);
        return hp_errf(e, "%s: offset %ld: not UTF-8", token_file, bad);
    }
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    size_t hcap = 16;
    while (hcap < 2 * lines) hcap *= 2;
    int *slot = malloc(sizeof(int) * hcap); /* image name -> index, open addressing */
    int cap = 0, rc = 0, line = 0;
    if (!slot) rc = hp_errf(e, "out of memory");
    for (size_t i = 0; slot && i < hcap; i++) slot[i] = -1;
    char *p = text;
    while (!rc && p < text + len) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p)), *end = nl ? nl : text + len;
        line++;
        char *next = nl ? nl + 1 : text + len;
        if (end > p && end[-1] == '\r') end--;
        *end = 0;
        if (!*p) {
            p = next;
            continue;
        }
        char *tab = strchr(p, '\t'), *hash = tab ? memrchr(p, '#', (size_t)(tab - p)) : NULL;
        if (!tab || !hash || hash == p || !tab[1]) {
            rc = hp_errf(e, "%s:%d: expected 'IMAGE#N<TAB>caption'", token_file, line);
            break;
        }
        *hash = 0;
        uint64_t h = hp_fnv1a(HP_FNV_OFFSET, p, (size_t)(hash - p));
        size_t at = h & (hcap - 1);
        while (slot[at] >= 0 && strcmp(out->name[slot[at]], p)) at = (at + 1) & (hcap - 1);
        int idx = slot[at];
        if (idx < 0) {
            if (out->n == cap) {
                cap = cap ? 2 * cap : 256;
                char **nm = realloc(out->name, sizeof(char *) * cap), **fl = nm ? realloc(out->file, sizeof(char *) * cap) : NULL;
                if (nm) out->name = nm;
                if (fl) out->file = fl;
                char ***cp = fl ? realloc(out->captions, sizeof(char **) * cap) : NULL;
                if (cp) out->captions = cp;
                int *nc = cp ? realloc(out->n_captions, sizeof(int) * cap) : NULL;
                if (!nc) {
                    rc = hp_errf(e, "out of memory");
                    break;
                }
                out->n_captions = nc;
            }
            idx = out->n;
            out->name[idx] = strdup(p);
            out->file[idx] = join(image_dir, p);
            out->captions[idx] = NULL;
            out->n_captions[idx] = 0;
            out->n++;
            if (!out->name[idx] || !out->file[idx]) {
                rc = hp_errf(e, "out of memory");
                break;
            }
            if (!hp_file_exists(out->file[idx])) {
                rc = hp_errf(e, "%s: missing (named on line %d of %s)", out->file[idx], line, token_file);
                break;
            }
            slot[at] = idx;
        }
        char **c = realloc(out->captions[idx], sizeof(char *) * (size_t)(out->n_captions[idx] + 1));
        if (!c || !(c[out->n_captions[idx]] = strdup(tab + 1))) {
            if (c) out->captions[idx] = c;
            rc = hp_errf(e, "out of memory");
            break;
        }
        out->captions[idx] = c;
        out->n_captions[idx]++;
        p = next;
    }
    free(slot);
    free(text);
    if (!rc && out->n == 0) rc = hp_errf(e, "%s: no captions", token_file);
    if (!rc) {
        out->label = malloc(sizeof(int) * (size_t)out->n);
        if (!out->label || asprintf(&out->source, "%s (%s)", token_file, image_dir) < 0) {
            out->source = NULL;
            rc = hp_errf(e, "out of memory");
        } else {
            for (int i = 0; i < out->n; i++) out->label[i] = -1;
        }
    }
    if (rc) hp_imageset_free(out);
    return rc;
}

/* ------------------------------------------------------------------ the command-line form */

/* "train-images-idx3-ubyte.gz" -> "train-labels-idx1-ubyte.gz" (NULL when the name has neither). */
static char *labels_beside(const char *images) {
    const char *base = strrchr(images, '/');
    base = base ? base + 1 : images;
    char *out = strdup(images);
    if (!out) return NULL;
    char *b = out + (base - images), *at;
    int changed = 0;
    if ((at = strstr(b, "images"))) memcpy(at, "labels", 6), changed = 1;
    if ((at = strstr(b, "idx3"))) memcpy(at, "idx1", 4), changed = 1;
    if (!changed) {
        free(out);
        return NULL;
    }
    return out;
}

int hp_imageset_open(const char *spec, const char *labels, const char *captions, hp_imageset *out,
                     hp_err *e) {
    memset(out, 0, sizeof *out);
    if (hp_is_dir(spec)) {
        if (labels) return hp_errf(e, "%s: --labels goes with an IDX images file, not a folder", spec);
        return captions ? hp_imageset_load_captions(captions, spec, out, e) : hp_imageset_load_folder(spec, out, e);
    }
    if (!hp_file_exists(spec)) return hp_errf(e, "%s: no such file or folder", spec);
    if (captions) return hp_errf(e, "%s: --captions needs the folder of images, not a file", spec);
    char *guess = labels ? NULL : labels_beside(spec);
    if (guess && !hp_file_exists(guess)) {
        free(guess);
        guess = NULL;
    }
    int rc = hp_imageset_load_idx(spec, labels ? labels : guess, out, e);
    free(guess);
    return rc;
}

int hp_imageset_set_classes(hp_imageset *s, const char *words_path, hp_err *e) {
    hp_wordlist wl;
    if (hp_wordlist_load(words_path, &wl, e)) return -1;
    int maxl = -1;
    for (int i = 0; i < s->n; i++)
        if (s->label[i] > maxl) maxl = s->label[i];
    int idx = s->grey != NULL, ok = idx ? wl.n > maxl : wl.n == s->n_classes;
    if (maxl < 0 || !ok) {
        int want = idx ? maxl + 1 : s->n_classes;
        hp_wordlist_free(&wl);
        if (maxl < 0) return hp_errf(e, "%s: the images of %s have no labels to name", words_path, s->source);
        return hp_errf(e, "%s: %d class names for %s%d classes of %s (one a line, in class order)", words_path,
                       wl.n, idx ? "at least " : "", want, s->source);
    }
    for (int c = 0; c < s->n_classes; c++) free(s->classes[c]);
    free(s->classes);
    s->classes = wl.words;
    s->n_classes = wl.n;
    return 0;
}

/* ------------------------------------------------------------------ subsets */

int hp_imageset_select(hp_imageset *s, int offset, int limit, hp_err *e) {
    if (offset < 0) return hp_errf(e, "--offset %d is negative", offset);
    if (offset >= s->n) return hp_errf(e, "--offset %d leaves none of the %d images of %s", offset, s->n, s->source);
    int n = s->n, *order = malloc(sizeof(int) * (size_t)n), *start = calloc((size_t)s->n_classes + 2, sizeof(int));
    int *fill = calloc((size_t)s->n_classes + 1, sizeof(int)), *bycls = malloc(sizeof(int) * (size_t)n);
    unsigned char *keep = calloc((size_t)n, 1);
    int rc = -1;
    if (!order || !start || !fill || !bycls || !keep) {
        hp_errf(e, "out of memory");
        goto done;
    }
    /* Class c (unlabelled images as one extra class) holds bycls[start[c] .. start[c+1]). */
    int nc = s->n_classes + 1;
#define CLS(i) (s->label[i] >= 0 && s->label[i] < s->n_classes ? s->label[i] : s->n_classes)
    for (int i = 0; i < n; i++) start[CLS(i) + 1]++;
    for (int c = 0; c < nc; c++) start[c + 1] += start[c];
    for (int i = 0; i < n; i++) bycls[start[CLS(i)] + fill[CLS(i)]++] = i;
#undef CLS
    int m = 0;
    for (int r = 0; m < n; r++)
        for (int c = 0; c < nc; c++)
            if (start[c] + r < start[c + 1]) order[m++] = bycls[start[c] + r];
    int end = limit > 0 && offset + limit < n ? offset + limit : n, k = end - offset;
    for (int i = offset; i < end; i++) keep[order[i]] = 1;
    int *label = malloc(sizeof(int) * (size_t)k);
    char **name = malloc(sizeof(char *) * (size_t)k), **file = s->file ? malloc(sizeof(char *) * (size_t)k) : NULL;
    char ***caps = s->captions ? malloc(sizeof(char **) * (size_t)k) : NULL;
    int *ncap = s->captions ? malloc(sizeof(int) * (size_t)k) : NULL;
    size_t px = (size_t)s->w * s->h;
    uint8_t *grey = s->grey ? malloc(px * (size_t)k) : NULL;
    if (!label || !name || (s->file && !file) || (s->captions && (!caps || !ncap)) || (s->grey && !grey)) {
        free(label), free(name), free(file), free(caps), free(ncap), free(grey);
        hp_errf(e, "out of memory");
        goto done;
    }
    for (int j = 0; j < k; j++) {
        int i = order[offset + j];
        label[j] = s->label[i];
        name[j] = s->name[i];
        if (file) file[j] = s->file[i];
        if (caps) caps[j] = s->captions[i], ncap[j] = s->n_captions[i];
        if (grey) memcpy(grey + px * j, s->grey + px * i, px);
    }
    for (int i = 0; i < n; i++) {
        if (keep[i]) continue;
        free(s->name[i]);
        if (s->file) free(s->file[i]);
        for (int c = 0; s->captions && c < s->n_captions[i]; c++) free(s->captions[i][c]);
        if (s->captions) free(s->captions[i]);
    }
    free(s->label), free(s->name), free(s->file), free(s->captions), free(s->n_captions), free(s->grey);
    s->label = label, s->name = name, s->file = file, s->captions = caps, s->n_captions = ncap, s->grey = grey;
    s->n = k;
    rc = 0;
done:
    free(order);
    free(start);
    free(fill);
    free(bycls);
    free(keep);
    return rc;
}

/* ------------------------------------------------------------------ access */

int hp_imageset_image(const hp_imageset *s, int i, hp_image *out, hp_err *e) {
    if (i < 0 || i >= s->n) return hp_errf(e, "%s: image %d of %d", s->source, i, s->n);
    if (s->grey) {
        size_t px = (size_t)s->w * s->h;
        if (hp_image_from_grey(s->grey + px * i, s->w, s->h, out, e))
            return hp_errf(e, "%s: image %s: %dx%d pixels", s->source, s->name[i], s->w, s->h);
        return 0;
    }
    return hp_image_load(s->file[i], out, e);
}

int hp_imageset_hash(const hp_imageset *s, const char *salt, char out[17], hp_err *e) {
    uint64_t h = hp_fnv1a(HP_FNV_OFFSET, salt, strlen(salt) + 1);
    for (int c = 0; c < s->n_classes; c++) h = hp_fnv1a(h, s->classes[c], strlen(s->classes[c]) + 1);
    for (int i = 0; i < s->n; i++) {
        h = hp_fnv1a(h, s->name[i], strlen(s->name[i]) + 1);
        h = hp_fnv1a(h, &s->label[i], sizeof(int));
        if (s->grey) continue;
        char *data;
        size_t len;
        if (hp_read_file(s->file[i], &data, &len, e)) return -1;
        h = hp_fnv1a(h, data, len);
        free(data);
    }
    if (s->grey) h = hp_fnv1a(h, s->grey, (size_t)s->w * s->h * s->n);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return 0;
}

void hp_imageset_free(hp_imageset *s) {
    for (int c = 0; s->classes && c < s->n_classes; c++) free(s->classes[c]);
    free(s->classes);
    for (int i = 0; i < s->n; i++) {
        if (s->name) free(s->name[i]);
        if (s->file) free(s->file[i]);
        for (int c = 0; s->captions && s->n_captions && c < s->n_captions[i]; c++) free(s->captions[i][c]);
        if (s->captions) free(s->captions[i]);
    }
    free(s->name);
    free(s->file);
    free(s->captions);
    free(s->n_captions);
    free(s->label);
    free(s->grey);
    free(s->source);
    memset(s, 0, sizeof *s);
}
