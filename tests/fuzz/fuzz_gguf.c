/* fuzz_gguf.c: libFuzzer harness for the GGUF reader (weights/gguf.c), the metadata getters and
 * hp_config_from_gguf_store: open the input as a GGUF file, read every key through the typed
 * getters, derive a config, convert every tensor it accepts, close. */
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "fuzz_common.h"
#include "gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(data, size, ".gguf");
    hp_store s;
    hp_err e;
    int rc = hp_store_open_gguf(&s, path, &e);
    fuzz_check_store(rc, &s, &e, path);
    if (rc) return 0;
    const hp_gguf *g = s.gguf;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const hp_gguf_kv *kv = &g->kv[i];
        int64_t v;
        double f;
        hp_gguf_get_int(g, kv->key, &v, &e);
        hp_gguf_get_float(g, kv->key, &f, &e);
        hp_gguf_get_str(g, kv->key);
        if (kv->type == HP_GGUF_ARRAY && kv->n) {
            hp_gguf_arr_int(kv, kv->n - 1, &v);
            (void)hp_gguf_arr_float(kv, kv->n - 1);
            if (kv->arr_type == HP_GGUF_STRING &&
                strlen(kv->strs[kv->n - 1]) > kv->str_lens[kv->n - 1])
                abort();
        }
    }
    hp_config c;
    if (hp_config_from_gguf_store(&s, &c, &e) && !strstr(e.msg, path)) abort();
    hp_store_close(&s);
    return 0;
}
