/* fuzz_common.h: shared by the libFuzzer harnesses: the input bytes go to one temporary file per
 * process (the readers take paths and memory-map them), and every tensor a reader accepts is
 * converted to float32 so that any out-of-bounds read shows up under ASan. */
#ifndef HP_FUZZ_COMMON_H
#define HP_FUZZ_COMMON_H

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store.h"

static char fuzz_path[64];
static int fuzz_fd = -1;

static void fuzz_cleanup(void) {
    if (fuzz_fd >= 0) unlink(fuzz_path);
}

/* Replaces the temporary file's contents with data; returns its path. */
static const char *fuzz_write(const uint8_t *data, size_t size, const char *suffix) {
    if (fuzz_fd < 0) {
        snprintf(fuzz_path, sizeof fuzz_path, "/tmp/hp_fuzz_%d%s", (int)getpid(), suffix);
        fuzz_fd = open(fuzz_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (fuzz_fd < 0) abort();
        atexit(fuzz_cleanup);
    }
    if (ftruncate(fuzz_fd, 0) || (size && pwrite(fuzz_fd, data, size, 0) != (ssize_t)size)) abort();
    return fuzz_path;
}

/* Every accepted tensor must lie inside its file's mapping, be findable by name and convert;
 * the conversion reads from an exact-size heap copy, because ASan cannot see reads past a
 * tensor's end inside a mapping. A rejected file's message must name it. */
static void fuzz_check_store(int rc, hp_store *s, const hp_err *e, const char *path) {
    if (rc) {
        if (!strstr(e->msg, path)) {
            fprintf(stderr, "error message does not name the file: %s\n", e->msg);
            abort();
        }
        return;
    }
    for (int i = 0; i < s->n; i++) {
        hp_tensor t = s->t[i];
        if (hp_store_find(s, t.name) != &s->t[i]) abort();
        const hp_mapping *m = NULL;
        for (int k = 0; k < s->nmaps; k++)
            if (s->maps[k].path == t.file) m = &s->maps[k];
        const uint8_t *base = m ? m->base : NULL;
        if (!m || t.data < base || t.nbytes > m->size ||
            t.data - base > (ptrdiff_t)(m->size - t.nbytes))
            abort();
        uint8_t *copy = malloc(t.nbytes ? t.nbytes : 1);
        float *y = malloc((t.nelem ? t.nelem : 1) * sizeof *y);
        if (!copy || !y) abort();
        memcpy(copy, t.data, t.nbytes);
        t.data = copy;
        hp_err e2;
        if (hp_tensor_to_f32(&t, y, &e2)) abort(); /* the reader validated it */
        free(copy);
        free(y);
    }
}

#endif
