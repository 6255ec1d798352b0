/* fuzz_safetensors.c: libFuzzer harness for the safetensors reader (weights/safetensors.c):
 * open the input as a .safetensors file, convert every tensor it accepts, close. */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(data, size, ".safetensors");
    hp_store s;
    hp_err e;
    int rc = hp_store_open_safetensors(&s, path, &e);
    fuzz_check_store(rc, &s, &e, path);
    if (!rc) hp_store_close(&s);
    return 0;
}
