/* stage.h: cached, resumable pipeline stages for `run`. A stage is identified by a name and a key
 * (a hash of everything its result depends on: file identities and contents, options, the
 * stage's version). When it finishes, a record OUT/.stages/<name>.json lists its output files
 * with their sizes and hashes; a later run with the same key finds the record, re-checks every
 * output (a truncated or edited file fails the check) and skips the stage. */
#ifndef HP_STAGE_H
#define HP_STAGE_H

#include "common.h"

#include <stdint.h>

/* A running FNV-1a key: add strings, numbers and file identities, then read the hex digest. */
typedef struct hp_key {
    uint64_t h;
} hp_key;
void hp_key_init(hp_key *k, const char *stage, int version);
void hp_key_str(hp_key *k, const char *name, const char *value);
void hp_key_num(hp_key *k, const char *name, double value);
/* The bytes of a whole file (data files, word lists). */
int hp_key_file(hp_key *k, const char *name, const char *path, hp_err *e);
/* A large file by identity: path, size, modification time and the first and last MiB (model
 * weights: hashing gigabytes on every run would cost more than the check is worth); a folder
 * (Hugging Face checkpoint, sharded or not) by the identity of every regular file in it. */
int hp_key_file_identity(hp_key *k, const char *name, const char *path, hp_err *e);
void hp_key_hex(const hp_key *k, char out[17]);

/* Hash of a file's bytes (hex), and its size. */
int hp_file_hash(const char *path, char out[17], long long *size, hp_err *e);

/* 1 when OUT/.stages/<name>.json exists with this key and every output it lists has the recorded
 * size and hash; else 0, with *why (static text) saying what did not match (NULL: no record). */
int hp_stage_cached(const char *outdir, const char *name, const char *key, const char **why);
/* Writes the record (atomically) after the outputs: paths relative to outdir. */
int hp_stage_record(const char *outdir, const char *name, const char *key, const char *const *outputs,
                    int n_outputs, double seconds, hp_err *e);
/* Removes the record (a forced stage is recomputed even if interrupted again). */
void hp_stage_forget(const char *outdir, const char *name);

#endif
