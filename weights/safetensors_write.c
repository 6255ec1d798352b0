/* safetensors_write.c: float32 safetensors output with metadata, written atomically. */
#include "safetensors_write.h"

#include "fileio.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>

int hp_safetensors_write(const char *path, const hp_st_out *t, int n, const char *const *meta_kv,
                         int n_meta, hp_err *e) {
    cJSON *h = cJSON_CreateObject();
    if (!h) return hp_errf(e, "%s: out of memory", path);
    if (n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(h, "__metadata__");
        for (int i = 0; i < n_meta; i++) cJSON_AddStringToObject(m, meta_kv[2 * i], meta_kv[2 * i + 1]);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint64_t cnt = 1;
        cJSON *o = cJSON_AddObjectToObject(h, t[i].name);
        cJSON_AddStringToObject(o, "dtype", "F32");
        cJSON *sh = cJSON_AddArrayToObject(o, "shape");
        for (int d = 0; d < t[i].ndim; d++) {
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t[i].shape[d]));
            cnt *= (uint64_t)t[i].shape[d];
        }
        cJSON *offs = cJSON_AddArrayToObject(o, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        off += cnt * 4;
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
    }
    char *js = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!js) return hp_errf(e, "%s: out of memory", path);
    size_t hl = strlen(js), padded = (hl + 7) / 8 * 8; /* keep the data 8-byte aligned */
    hp_atomic_file af;
    if (hp_atomic_open(&af, path, e)) {
        free(js);
        return -1;
    }
    uint64_t hl64 = padded;
    int bad = fwrite(&hl64, 8, 1, af.f) != 1 || fwrite(js, 1, hl, af.f) != hl;
    for (size_t i = hl; i < padded && !bad; i++) bad = fputc(' ', af.f) == EOF;
    free(js);
    for (int i = 0; i < n && !bad; i++) {
        size_t cnt = 1;
        for (int d = 0; d < t[i].ndim; d++) cnt *= (size_t)t[i].shape[d];
        bad = fwrite(t[i].data, 4, cnt, af.f) != cnt;
    }
    if (bad) {
        hp_atomic_abort(&af);
        return hp_errf(e, "%s: write failed", path);
    }
    return hp_atomic_commit(&af, e);
}

char *hp_safetensors_metadata(const char *path, const char *key, hp_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        hp_errf(e, "%s: cannot open", path);
        return NULL;
    }
    uint64_t hl = 0;
    char *js = NULL, *out = NULL;
    if (fread(&hl, 8, 1, f) != 1 || hl == 0 || hl > (100u << 20)) {
        hp_errf(e, "%s: not a safetensors file (bad header length)", path);
        goto done;
    }
    js = malloc(hl + 1);
    if (!js || fread(js, 1, hl, f) != hl) {
        hp_errf(e, "%s: truncated safetensors header", path);
        goto done;
    }
    js[hl] = 0;
    cJSON *h = cJSON_Parse(js);
    cJSON *m = h ? cJSON_GetObjectItemCaseSensitive(h, "__metadata__") : NULL;
    cJSON *v = m ? cJSON_GetObjectItemCaseSensitive(m, key) : NULL;
    if (cJSON_IsString(v)) out = strdup(v->valuestring);
    else hp_errf(e, "%s: no metadata key '%s'", path, key);
    cJSON_Delete(h);
done:
    free(js);
    fclose(f);
    return out;
}
