/* fuzz_image.c: libFuzzer harness for image decoding (weights/image.c) and the LLaVA-NeXT
 * processor (host/model/llava_proc.c, compiled in here because `make fuzz` links weights/ only).
 * The input is written to a file and decoded; a rejected file's message must name it; an
 * accepted image must have a sane size and go through the processor (small config: crop 32,
 * patch 8) into finite values with the tile and token counts the size predicts.
 * Seeds: tests/fuzz/seeds/image (copies of small tests/fixtures/images files). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../../host/model/llava_proc.c"
#include "fuzz_common.h"
#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(data, size, "_image");
    hp_image im;
    hp_err e;
    if (hp_image_load(path, &im, &e)) {
        if (!strstr(e.msg, path) || im.rgb) abort();
        return 0;
    }
    if (im.w <= 0 || im.h <= 0 || im.w > HP_IMAGE_MAX_SIDE || im.h > HP_IMAGE_MAX_SIDE || !im.rgb) abort();
    /* reads every byte, so ASan sees a short allocation */
    unsigned acc = 0;
    for (size_t i = 0; i < (size_t)im.w * im.h * 3; i++) acc += im.rgb[i];
    (void)acc;
    if ((int64_t)im.w * im.h <= 1 << 20) { /* keep each run fast */
        hp_llava_proc_cfg c;
        hp_llava_proc_defaults(&c, 32, 8);
        hp_pixels p;
        if (hp_llava_preprocess(&im, &c, &p, &e)) abort();
        if (p.n_tiles != hp_llava_num_tiles(&c, im.h, im.w) || p.n_tiles < 3 || p.n_tiles > 5) abort();
        for (size_t i = 0; i < (size_t)p.n_tiles * 3 * 32 * 32; i++)
            if (!isfinite(p.data[i]) || fabsf(p.data[i]) > 3.0f) abort();
        int t = hp_llava_num_image_tokens(&c, im.h, im.w), gh, gw, uh, uw;
        hp_llava_unpad_shape(&c, im.h, im.w, &gh, &gw, &uh, &uw);
        if (t != 16 + uh * (uw + 1) || uh < 0 || uw < 0 || uh > gh * 4 || uw > gw * 4) abort();
        hp_pixels_free(&p);
    }
    hp_image_free(&im);
    return 0;
}
