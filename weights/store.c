/* store.c: the tensor store shared by the safetensors and GGUF readers: mappings, the tensor
 * table (sorted by name for bisection), duplicate and overlap checks, lookup and close. */
#include "store_internal.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fileio.h"
#include "gguf.h"

int hp_store_add_map(hp_store *s, const char *path, hp_err *e) {
    hp_mapping m = {0};
    m.path = strdup(path);
    if (!m.path) return hp_errf(e, "%s: out of memory", path);
    if (hp_mmap_file(path, &m.base, &m.size, e)) {
        free(m.path);
        return -1;
    }
    hp_mapping *maps = realloc(s->maps, (size_t)(s->nmaps + 1) * sizeof *maps);
    if (!maps) {
        hp_munmap(m.base, m.size);
        free(m.path);
        return hp_errf(e, "%s: out of memory", path);
    }
    s->maps = maps;
    s->maps[s->nmaps] = m;
    return s->nmaps++;
}

hp_tensor *hp_store_new_tensor(hp_store *s, size_t *cap, const char *path, hp_err *e) {
    if ((size_t)s->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        if (nc > (size_t)INT32_MAX) {
            hp_errf(e, "%s: too many tensors", path);
            return NULL;
        }
        hp_tensor *t = realloc(s->t, nc * sizeof *t);
        if (!t) {
            hp_errf(e, "%s: out of memory for %zu tensors", path, nc);
            return NULL;
        }
        s->t = t;
        *cap = nc;
    }
    hp_tensor *t = &s->t[s->n++];
    memset(t, 0, sizeof *t);
    return t;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const hp_tensor *)a)->name, ((const hp_tensor *)b)->name);
}

int hp_store_index(hp_store *s, hp_err *e) {
    if (s->n > 1) qsort(s->t, (size_t)s->n, sizeof *s->t, cmp_name);
    for (int i = 1; i < s->n; i++)
        if (!strcmp(s->t[i - 1].name, s->t[i].name))
            return hp_errf(e, "%s: duplicate tensor name '%s' (also in %s)", s->t[i].file,
                           s->t[i].name, s->t[i - 1].file);
    return 0;
}

static int cmp_data(const void *a, const void *b) {
    const hp_tensor *x = *(const hp_tensor *const *)a, *y = *(const hp_tensor *const *)b;
    return (x->data > y->data) - (x->data < y->data);
}

int hp_store_check_overlap(const hp_store *s, int first, const uint8_t *base, hp_err *e) {
    int n = s->n - first, m = 0;
    if (n < 2) return 0;
    const hp_tensor **v = malloc((size_t)n * sizeof *v);
    if (!v) return hp_errf(e, "%s: out of memory", s->t[first].file);
    for (int i = first; i < s->n; i++)
        if (s->t[i].nbytes) v[m++] = &s->t[i]; /* empty tensors occupy no bytes */
    qsort(v, (size_t)m, sizeof *v, cmp_data);
    int rc = 0;
    for (int i = 1; i < m; i++) {
        /* data + nbytes cannot overflow: both were checked against the mapping's size */
        if (v[i - 1]->data + v[i - 1]->nbytes > v[i]->data) {
            rc = hp_errf(e,
                         "%s: byte %zu: tensor '%s' overlaps tensor '%s' (which ends at byte %zu)",
                         v[i]->file, (size_t)(v[i]->data - base), v[i]->name, v[i - 1]->name,
                         (size_t)(v[i - 1]->data - base) + v[i - 1]->nbytes);
            break;
        }
    }
    free(v);
    return rc;
}

const hp_tensor *hp_store_find(const hp_store *s, const char *name) {
    if (!s || !name || s->n <= 0) return NULL;
    hp_tensor key = {0};
    key.name = (char *)name;
    return bsearch(&key, s->t, (size_t)s->n, sizeof *s->t, cmp_name);
}

void hp_store_release(hp_store *s) {
    for (int i = 0; s && i < s->nmaps; i++)
        if (s->maps[i].base && s->maps[i].size) madvise(s->maps[i].base, s->maps[i].size, MADV_DONTNEED);
}

void hp_store_release_tensor(const hp_tensor *t) {
    long pg = sysconf(_SC_PAGESIZE);
    if (!t || !t->data || pg <= 0) return;
    uintptr_t a = ((uintptr_t)t->data + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
    uintptr_t b = ((uintptr_t)t->data + t->nbytes) & ~((uintptr_t)pg - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

void hp_store_close(hp_store *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->t[i].name);
    free(s->t);
    for (int i = 0; i < s->nmaps; i++) {
        hp_munmap(s->maps[i].base, s->maps[i].size);
        free(s->maps[i].path);
    }
    free(s->maps);
    if (s->gguf) hp_gguf_free(s->gguf);
    memset(s, 0, sizeof *s);
}
