/* fuzz_toxic_prompts.c: libFuzzer harness for the RealToxicityPrompts / TET readers
 * (weights/toxic_prompts.c): the input is read as either format (its first byte decides, as
 * hp_tox_load does); an accepted set must hold non-empty UTF-8 prompts and in-range scores, a
 * rejected file's message must name it. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "dataset.h"
#include "fuzz_common.h"
#include "toxic_prompts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(data, size, "_tox.jsonl");
    hp_tox_set s;
    hp_err e;
    hp_tox_filter f = {size & 1, (size & 2) ? 0.5 : -1};
    if (hp_tox_load(path, &f, &s, &e)) {
        if (!strstr(e.msg, path)) abort();
        return 0;
    }
    if (s.n <= 0 || s.n > s.n_read) abort();
    for (int i = 0; i < s.n; i++) {
        const hp_tox_item *it = &s.items[i];
        if (!it->id || !it->prompt[0] || hp_utf8_invalid_at(it->prompt, strlen(it->prompt)) >= 0) abort();
        for (int k = 0; k < HP_TOX_N_ATTR; k++)
            if (!isnan(it->prompt_score[k]) && !(it->prompt_score[k] >= 0 && it->prompt_score[k] <= 1)) abort();
        if (f.min_prompt_toxicity >= 0 && !(it->prompt_score[0] >= 0.5f)) abort();
        if (f.challenging_only && !it->challenging) abort();
    }
    hp_tox_free(&s);
    return 0;
}
