/* fileio.h: whole-file reads, memory mapping, and atomic writes (write to a temporary file in
 * the target's directory, fsync, rename) so that a crash never leaves a half-written result. */
#ifndef HP_FILEIO_H
#define HP_FILEIO_H

#include "common.h"
#include <stdio.h>

/* Reads a whole file, NUL-terminated (len excludes the NUL). */
int hp_read_file(const char *path, char **data, size_t *len, hp_err *e);
int hp_mmap_file(const char *path, void **base, size_t *size, hp_err *e);
void hp_munmap(void *base, size_t size);

typedef struct hp_atomic_file {
    FILE *f;
    char *tmp_path;
    char *final_path;
} hp_atomic_file;

/* Opens a temporary beside path, creating missing parent directories. */
int hp_atomic_open(hp_atomic_file *af, const char *path, hp_err *e);
/* Flushes, fsyncs and renames over the target; on any write error removes the temporary. */
int hp_atomic_commit(hp_atomic_file *af, hp_err *e);
void hp_atomic_abort(hp_atomic_file *af);
/* Writes a buffer atomically. */
int hp_write_file_atomic(const char *path, const void *data, size_t len, hp_err *e);

/* Reads and parses a JSON file; errors name the file (and the byte where parsing stopped). */
struct cJSON;
struct cJSON *hp_read_json(const char *path, hp_err *e);
/* Writes j pretty-printed, atomically. */
int hp_write_json(const char *path, const struct cJSON *j, hp_err *e);

int hp_path_join(char *out, size_t cap, const char *dir, const char *name);
int hp_is_dir(const char *path);
int hp_file_exists(const char *path);

#endif
