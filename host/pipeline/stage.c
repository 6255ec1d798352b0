/* stage.c: stage keys and records (see stage.h). */
#include "stage.h"

#include "fileio.h"

#include <cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

void hp_key_init(hp_key *k, const char *stage, int version) {
    k->h = HP_FNV_OFFSET;
    hp_key_str(k, "stage", stage);
    hp_key_num(k, "version", version);
}

void hp_key_str(hp_key *k, const char *name, const char *value) {
    k->h = hp_fnv1a(k->h, name, strlen(name) + 1);
    k->h = value ? hp_fnv1a(k->h, value, strlen(value) + 1) : hp_fnv1a(k->h, "\xff(null)", 8);
}

void hp_key_num(hp_key *k, const char *name, double value) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", value);
    hp_key_str(k, name, buf);
}

int hp_key_file(hp_key *k, const char *name, const char *path, hp_err *e) {
    char *data;
    size_t len;
    if (hp_read_file(path, &data, &len, e)) return -1;
    k->h = hp_fnv1a(k->h, name, strlen(name) + 1);
    k->h = hp_fnv1a(k->h, &len, sizeof len);
    k->h = hp_fnv1a(k->h, data, len);
    free(data);
    return 0;
}

int hp_key_file_identity(hp_key *k, const char *name, const char *path, hp_err *e) {
    struct stat st;
    if (stat(path, &st)) return hp_errf(e, "%s: %s", path, strerror(errno));
    hp_key_str(k, name, path);
    if (S_ISDIR(st.st_mode)) { /* a Hugging Face folder: every regular file in it, by name order */
        struct dirent **ents = NULL;
        int n = scandir(path, &ents, NULL, alphasort), rc = n < 0 ? hp_errf(e, "%s: %s", path, strerror(errno)) : 0;
        for (int i = 0; i < n; i++) {
            char sub[4096];
            struct stat fs;
            snprintf(sub, sizeof sub, "%s/%s", path, ents[i]->d_name);
            if (!rc && ents[i]->d_name[0] != '.' && !stat(sub, &fs) && S_ISREG(fs.st_mode))
                rc = hp_key_file_identity(k, ents[i]->d_name, sub, e);
            free(ents[i]);
        }
        free(ents);
        return rc;
    }
    hp_key_num(k, "size", (double)st.st_size);
    hp_key_num(k, "mtime", (double)st.st_mtim.tv_sec * 1e9 + (double)st.st_mtim.tv_nsec);
    FILE *f = fopen(path, "rb");
    if (!f) return hp_errf(e, "%s: %s", path, strerror(errno));
    enum { MIB = 1 << 20 };
    unsigned char *buf = malloc(MIB);
    int rc = 0;
    if (!buf) rc = hp_errf(e, "out of memory");
    for (int part = 0; part < 2 && !rc; part++) {
        long long off = part == 0 ? 0 : (st.st_size > MIB ? (long long)st.st_size - MIB : 0);
        if (fseeko(f, (off_t)off, SEEK_SET)) {
            rc = hp_errf(e, "%s: %s", path, strerror(errno));
            break;
        }
        size_t n = fread(buf, 1, MIB, f);
        k->h = hp_fnv1a(k->h, buf, n);
    }
    free(buf);
    fclose(f);
    return rc;
}

void hp_key_hex(const hp_key *k, char out[17]) { snprintf(out, 17, "%016llx", (unsigned long long)k->h); }

int hp_file_hash(const char *path, char out[17], long long *size, hp_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return hp_errf(e, "%s: %s", path, strerror(errno));
    uint64_t h = HP_FNV_OFFSET;
    long long n_all = 0;
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        h = hp_fnv1a(h, buf, n);
        n_all += (long long)n;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) return hp_errf(e, "%s: read error", path);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    *size = n_all;
    return 0;
}

static char *record_path(const char *outdir, const char *name) {
    char safe[128], *p = NULL;
    size_t j = 0;
    for (const char *q = name; *q && j + 1 < sizeof safe; q++)
        safe[j++] = (isalnum((unsigned char)*q) || *q == '-' || *q == '.') ? *q : '_';
    safe[j] = 0;
    return asprintf(&p, "%s/.stages/%s.json", outdir, safe) < 0 ? NULL : p;
}

int hp_stage_cached(const char *outdir, const char *name, const char *key, const char **why) {
    *why = NULL;
    char *path = record_path(outdir, name);
    if (!path || !hp_file_exists(path)) {
        free(path);
        return 0;
    }
    hp_err e = {0};
    cJSON *j = hp_read_json(path, &e);
    free(path);
    const cJSON *k = j ? cJSON_GetObjectItemCaseSensitive(j, "key") : NULL;
    const cJSON *outs = j ? cJSON_GetObjectItemCaseSensitive(j, "outputs") : NULL;
    int ok = 0;
    if (!j || !cJSON_IsString(k) || !cJSON_IsArray(outs)) *why = "its record is unreadable";
    else if (strcmp(k->valuestring, key)) *why = "its inputs changed";
    else {
        ok = 1;
        for (const cJSON *o = outs->child; o && ok; o = o->next) {
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "path");
            const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "hash");
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "bytes");
            char full[4096], hash[17];
            long long size = -1;
            hp_err fe = {0};
            if (!cJSON_IsString(p) || !cJSON_IsString(h) || !cJSON_IsNumber(s)) {
                ok = 0, *why = "its record is unreadable";
                break;
            }
            snprintf(full, sizeof full, "%s/%s", outdir, p->valuestring);
            if (!hp_file_exists(full)) ok = 0, *why = "an output file is missing";
            else if (hp_file_hash(full, hash, &size, &fe) || size != (long long)s->valuedouble)
                ok = 0, *why = "an output file has the wrong length (truncated?)";
            else if (strcmp(hash, h->valuestring)) ok = 0, *why = "an output file does not match its hash (corrupt?)";
        }
    }
    cJSON_Delete(j);
    return ok;
}

int hp_stage_record(const char *outdir, const char *name, const char *key, const char *const *outputs,
                    int n_outputs, double seconds, hp_err *e) {
    char *path = record_path(outdir, name);
    cJSON *j = cJSON_CreateObject();
    int rc = -1;
    if (!path || !j) {
        hp_errf(e, "out of memory");
        goto out;
    }
    cJSON_AddStringToObject(j, "stage", name);
    cJSON_AddStringToObject(j, "key", key);
    cJSON_AddNumberToObject(j, "seconds", seconds);
    cJSON *arr = cJSON_AddArrayToObject(j, "outputs");
    for (int i = 0; i < n_outputs; i++) {
        char full[4096], hash[17];
        long long size;
        snprintf(full, sizeof full, "%s/%s", outdir, outputs[i]);
        if (hp_file_hash(full, hash, &size, e)) goto out;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "path", outputs[i]);
        cJSON_AddNumberToObject(o, "bytes", (double)size);
        cJSON_AddStringToObject(o, "hash", hash);
        cJSON_AddItemToArray(arr, o);
    }
    rc = hp_write_json(path, j, e);
out:
    cJSON_Delete(j);
    free(path);
    return rc;
}

void hp_stage_forget(const char *outdir, const char *name) {
    char *path = record_path(outdir, name);
    if (path) unlink(path);
    free(path);
}
