/* fileio.c: whole-file reads, read-only mappings and atomic writes. */
#include "fileio.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int hp_read_file(const char *path, char **data, size_t *len, hp_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return hp_errf(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return hp_errf(e, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return hp_errf(e, "%s: out of memory reading %zu bytes", path, n);
    }
    if (n && fread(buf, 1, n, f) != n) {
        free(buf);
        fclose(f);
        return hp_errf(e, "%s: short read", path);
    }
    fclose(f);
    buf[n] = 0;
    *data = buf;
    if (len) *len = n;
    return 0;
}

int hp_mmap_file(const char *path, void **base, size_t *size, hp_err *e) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return hp_errf(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return hp_errf(e, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return hp_errf(e, "%s: empty file", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return hp_errf(e, "%s: mmap failed: %s", path, strerror(errno));
    *base = p;
    *size = (size_t)st.st_size;
    return 0;
}

void hp_munmap(void *base, size_t size) {
    if (base) munmap(base, size);
}

/* Creates the directories above path (like mkdir -p of its dirname). */
static int make_parents(const char *path) {
    char *p = strdup(path);
    if (!p) return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    free(p);
    return 0;
}

int hp_atomic_open(hp_atomic_file *af, const char *path, hp_err *e) {
    memset(af, 0, sizeof *af);
    if (make_parents(path)) return hp_errf(e, "%s: cannot create its directory: %s", path, strerror(errno));
    size_t n = strlen(path);
    af->final_path = strdup(path);
    af->tmp_path = malloc(n + 16);
    if (!af->final_path || !af->tmp_path) {
        hp_atomic_abort(af);
        return hp_errf(e, "%s: out of memory", path);
    }
    snprintf(af->tmp_path, n + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(af->tmp_path);
    if (fd < 0) {
        hp_errf(e, "%s: cannot create temporary file: %s", path, strerror(errno));
        free(af->tmp_path);
        af->tmp_path = NULL;
        hp_atomic_abort(af);
        return -1;
    }
    fchmod(fd, 0644);
    af->f = fdopen(fd, "wb");
    if (!af->f) {
        close(fd);
        hp_atomic_abort(af);
        return hp_errf(e, "%s: fdopen failed", path);
    }
    return 0;
}

int hp_atomic_commit(hp_atomic_file *af, hp_err *e) {
    int bad = ferror(af->f) != 0;
    bad |= fflush(af->f) != 0;
    bad |= fsync(fileno(af->f)) != 0;
    bad |= fclose(af->f) != 0;
    af->f = NULL;
    if (bad) {
        hp_errf(e, "%s: write failed: %s", af->final_path, strerror(errno));
        hp_atomic_abort(af);
        return -1;
    }
    if (rename(af->tmp_path, af->final_path) != 0) {
        hp_errf(e, "%s: rename failed: %s", af->final_path, strerror(errno));
        hp_atomic_abort(af);
        return -1;
    }
    free(af->tmp_path);
    free(af->final_path);
    af->tmp_path = af->final_path = NULL;
    return 0;
}

void hp_atomic_abort(hp_atomic_file *af) {
    if (af->f) fclose(af->f);
    if (af->tmp_path) unlink(af->tmp_path);
    free(af->tmp_path);
    free(af->final_path);
    memset(af, 0, sizeof *af);
}

int hp_write_file_atomic(const char *path, const void *data, size_t len, hp_err *e) {
    hp_atomic_file af;
    if (hp_atomic_open(&af, path, e)) return -1;
    if (len && fwrite(data, 1, len, af.f) != len) {
        hp_atomic_abort(&af);
        return hp_errf(e, "%s: write failed", path);
    }
    return hp_atomic_commit(&af, e);
}

int hp_path_join(char *out, size_t cap, const char *dir, const char *name) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

int hp_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int hp_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

cJSON *hp_read_json(const char *path, hp_err *e) {
    char *text;
    size_t len;
    if (hp_read_file(path, &text, &len, e)) return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root)
        hp_errf(e, "%s: byte %zu: not valid JSON", path,
                end && end >= text && end <= text + len ? (size_t)(end - text) : (size_t)0);
    free(text);
    return root;
}

int hp_write_json(const char *path, const cJSON *j, hp_err *e) {
    char *s = cJSON_Print(j);
    if (!s) return hp_errf(e, "%s: out of memory", path);
    int rc = hp_write_file_atomic(path, s, strlen(s), e);
    free(s);
    return rc;
}
