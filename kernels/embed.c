/* embed.c: token embedding gather (CPU). */
#include "ops_cpu.h"

#include <string.h>

int hp_cpu_embed(float *x, const float *table, const int32_t *ids, int T, int D, int V) {
    for (int t = 0; t < T; t++) {
        if (ids[t] < 0 || ids[t] >= V) return -1;
        memcpy(x + (size_t)t * D, table + (size_t)ids[t] * D, sizeof(float) * (size_t)D);
    }
    return 0;
}
