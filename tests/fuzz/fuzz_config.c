/* fuzz_config.c: libFuzzer harness for hp_config_from_json (weights/config.c): parse the input
 * as a config.json; an accepted config must be self-consistent, a rejected one must name the file.
 */
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(data, size, "_config.json");
    hp_config c;
    hp_err e;
    if (hp_config_from_json(path, &c, &e)) {
        if (!strstr(e.msg, path)) abort();
        return 0;
    }
    if (c.D <= 0 || c.H <= 0 || c.KV <= 0 || c.H % c.KV || c.Dh <= 0 || c.n_eos < 0 || c.n_eos > 8)
        abort();
    return 0;
}
