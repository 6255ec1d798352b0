/* image.h: PNG and JPEG decoding (libpng, libjpeg) to 8-bit RGB, with errors that name the file
 * and the problem (truncated, not an image, unsupported, too large). Grey, palette, alpha and
 * 16-bit inputs are converted to RGB8 the way PIL's convert("RGB") does. */
#ifndef HP_IMAGE_H
#define HP_IMAGE_H

#include "common.h"

/* Decoders refuse larger images (PIL's bomb check starts near 89 MP). */
#define HP_IMAGE_MAX_SIDE 16384
#define HP_IMAGE_MAX_PIXELS 100000000

typedef struct hp_image {
    int w, h;         /* width, height in pixels */
    uint8_t *rgb;     /* h*w*3 bytes, row-major, RGB */
} hp_image;

int hp_image_load(const char *path, hp_image *out, hp_err *e);
/* Decodes a PNG or JPEG held in memory (format from the magic bytes); `name` is used in errors. */
int hp_image_decode(const void *data, size_t n, const char *name, hp_image *out, hp_err *e);
/* From memory (for datasets that store images, e.g. IDX files): grey 8-bit to RGB. */
int hp_image_from_grey(const uint8_t *grey, int w, int h, hp_image *out, hp_err *e);
void hp_image_free(hp_image *im);

#endif
