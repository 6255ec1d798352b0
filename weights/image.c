/* image.c: PNG (libpng) and JPEG (libjpeg-turbo) decoding to 8-bit RGB, matching what PIL 9.4's
 * Image.open(path).convert("RGB") gives, which is what Hugging Face image processors receive:
 *   - the format comes from the magic bytes, never the file name;
 *   - grey is replicated, alpha dropped (not composited), palette indices looked up (an index
 *     past the PLTE entries gives grey (i,i,i), PIL's initial palette), 1/2/4-bit grey scaled
 *     by 255/(2^bits-1), 16-bit RGB/RGBA/grey+alpha samples truncated to their high byte, and
 *     16-bit grey clipped to 0..255 (PIL opens it as mode "I" and convert() clips, it does not
 *     scale): all checked against PIL in tests/test_image.c;
 *   - gamma, sBIT, tRNS, ICC profiles and EXIF orientation are ignored, as PIL does without
 *     ImageOps;
 *   - JPEG: libjpeg's defaults (ISLOW IDCT, fancy upsampling) with out_color_space RGB for three
 *     components, as PIL's decoder asks; four components are CMYK with Adobe (inverted)
 *     polarity, converted by PIL's cmyk2rgb formula. Running out of data anywhere (even when
 *     only the EOI marker is missing) is an error, as in PIL; libjpeg's other warnings
 *     (corrupt-data recoveries) are ignored, as in PIL.
 * Corrupt, truncated and oversized inputs return an error naming the file; libpng and libjpeg
 * errors are caught with setjmp and never exit. */
#include "image.h"

#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "fileio.h"

static int check_dims(const char *name, const char *fmt, uint32_t w, uint32_t h, hp_err *e) {
    if (w == 0 || h == 0) return hp_errf(e, "%s: %s image has zero size (%ux%u)", name, fmt, w, h);
    if (w > HP_IMAGE_MAX_SIDE || h > HP_IMAGE_MAX_SIDE ||
        (uint64_t)w * h > (uint64_t)HP_IMAGE_MAX_PIXELS)
        return hp_errf(e, "%s: %s image is %ux%u, over the limit (%d per side, %d pixels)", name, fmt,
                       w, h, HP_IMAGE_MAX_SIDE, HP_IMAGE_MAX_PIXELS);
    return 0;
}

static int alloc_rgb(hp_image *out, int w, int h, const char *name, hp_err *e) {
    size_t n;
    if (!hp_mul_ok((size_t)w, (size_t)h, &n) || !hp_mul_ok(n, 3, &n))
        return hp_errf(e, "%s: image size overflows", name);
    out->rgb = malloc(n);
    if (!out->rgb) return hp_errf(e, "%s: out of memory for a %dx%d image", name, w, h);
    out->w = w;
    out->h = h;
    return 0;
}

/* ---------------------------------------------------------------- PNG */

typedef struct png_ctx {
    const uint8_t *data;
    size_t n, pos;
    int truncated;
    char msg[256];
    jmp_buf jb;
    png_structp png;
    png_infop info;
    uint8_t *raw;       /* decoded rows, libpng's layout after png_set_packing */
    png_bytep *rows;
} png_ctx;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    longjmp(c->jb, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png; /* benign problems (bad ancillary CRC, extra data): PIL decodes these too */
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep out, png_size_t len) {
    png_ctx *c = png_get_io_ptr(png);
    if (len > c->n - c->pos) {
        c->truncated = 1;
        png_error(png, "unexpected end of file");
    }
    memcpy(out, c->data + c->pos, len);
    c->pos += len;
}

/* Converts libpng's rows (bit depths < 8 unpacked to one byte per sample, 16-bit big-endian) to
 * RGB8 the way PIL's PNG modes convert to "RGB". */
static void png_to_rgb(png_ctx *c, int color, int depth, hp_image *out) {
    png_colorp plte = NULL;
    int nplte = 0;
    if (color == PNG_COLOR_TYPE_PALETTE && !png_get_PLTE(c->png, c->info, &plte, &nplte)) nplte = 0;
    for (int y = 0; y < out->h; y++) {
        const uint8_t *s = c->rows[y];
        uint8_t *d = out->rgb + (size_t)y * out->w * 3;
        for (int x = 0; x < out->w; x++, d += 3) {
            unsigned r, g, b;
            switch (color) {
            case PNG_COLOR_TYPE_GRAY:
                if (depth == 16) {
                    unsigned v = (unsigned)s[2 * x] << 8 | s[2 * x + 1];
                    r = v > 255 ? 255 : v;
                } else {
                    r = s[x] * (depth == 1 ? 255u : depth == 2 ? 85u : depth == 4 ? 17u : 1u);
                }
                g = b = r;
                break;
            case PNG_COLOR_TYPE_GRAY_ALPHA:
                r = g = b = s[(size_t)x * 2 * (depth / 8)];
                break;
            case PNG_COLOR_TYPE_PALETTE: {
                unsigned i = s[x];
                if ((int)i < nplte) {
                    r = plte[i].red;
                    g = plte[i].green;
                    b = plte[i].blue;
                } else {
                    r = g = b = i;
                }
                break;
            }
            default: { /* RGB, RGBA: high byte of each sample */
                int ch = color == PNG_COLOR_TYPE_RGB ? 3 : 4, bps = depth / 8;
                const uint8_t *p = s + (size_t)x * ch * bps;
                r = p[0];
                g = p[bps];
                b = p[2 * bps];
            }
            }
            d[0] = (uint8_t)r;
            d[1] = (uint8_t)g;
            d[2] = (uint8_t)b;
        }
    }
}

static int decode_png(const uint8_t *data, size_t n, const char *name, hp_image *out, hp_err *e) {
    png_ctx *c = calloc(1, sizeof *c);
    if (!c) return hp_errf(e, "%s: out of memory", name);
    c->data = data;
    c->n = n;
    int rc = -1;
    c->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, png_on_error, png_on_warning);
    if (c->png) c->info = png_create_info_struct(c->png);
    if (!c->png || !c->info) {
        hp_errf(e, "%s: out of memory creating the PNG decoder", name);
        goto done;
    }
    if (setjmp(c->jb)) {
        if (c->truncated)
            hp_errf(e, "%s: truncated PNG (file ends at byte %zu)", name, c->n);
        else
            hp_errf(e, "%s: corrupt PNG near byte %zu: %s", name, c->pos, c->msg);
        hp_image_free(out);
        goto done;
    }
    png_set_read_fn(c->png, c, png_read_mem);
    png_set_chunk_malloc_max(c->png, 8u << 20); /* bounds zTXt/iCCP decompression */
    png_read_info(c->png, c->info);
    png_uint_32 w, h;
    int depth, color, interlace;
    png_get_IHDR(c->png, c->info, &w, &h, &depth, &color, &interlace, NULL, NULL);
    if (check_dims(name, "PNG", w, h, e)) goto done;
    if (depth < 8) png_set_packing(c->png);
    if (interlace != PNG_INTERLACE_NONE) png_set_interlace_handling(c->png);
    png_read_update_info(c->png, c->info);
    size_t rowbytes = png_get_rowbytes(c->png, c->info), total;
    if (!hp_mul_ok(rowbytes, h, &total)) {
        hp_errf(e, "%s: PNG size overflows", name);
        goto done;
    }
    c->raw = malloc(total ? total : 1);
    c->rows = malloc(h * sizeof *c->rows);
    if (!c->raw || !c->rows) {
        hp_errf(e, "%s: out of memory for a %ux%u PNG", name, w, h);
        goto done;
    }
    for (png_uint_32 y = 0; y < h; y++) c->rows[y] = c->raw + (size_t)y * rowbytes;
    png_read_image(c->png, c->rows);
    if (alloc_rgb(out, (int)w, (int)h, name, e)) goto done;
    png_to_rgb(c, color, depth, out);
    rc = 0;
done:
    png_destroy_read_struct(&c->png, &c->info, NULL);
    free(c->raw);
    free(c->rows);
    free(c);
    return rc;
}

/* ---------------------------------------------------------------- JPEG */

#define JPEG_MAX_SCANS 1000 /* progressive files with more scans are hostile (decode time) */

typedef struct jpeg_ctx {
    struct jpeg_error_mgr pub; /* first: libjpeg casts cinfo->err to this struct */
    struct jpeg_progress_mgr progress;
    jmp_buf jb;
    int truncated;
    char msg[JMSG_LENGTH_MAX];
    struct jpeg_decompress_struct cinfo;
    uint8_t *row;
} jpeg_ctx;

static void jpeg_on_error(j_common_ptr ci) {
    jpeg_ctx *c = (jpeg_ctx *)ci->err;
    ci->err->format_message(ci, c->msg);
    longjmp(c->jb, 1);
}

/* Warnings are ignored, as PIL does, except running out of data: PIL's decoder then waits for
 * more input and reports the file truncated, where jpeg_mem_src would invent an EOI. */
static void jpeg_on_message(j_common_ptr ci, int level) {
    jpeg_ctx *c = (jpeg_ctx *)ci->err;
    if (level < 0 && ci->err->msg_code == JWRN_JPEG_EOF) {
        c->truncated = 1;
        longjmp(c->jb, 1);
    }
}

static void jpeg_on_progress(j_common_ptr ci) {
    jpeg_ctx *c = (jpeg_ctx *)ci->err;
    if (c->cinfo.input_scan_number > JPEG_MAX_SCANS) {
        snprintf(c->msg, sizeof c->msg, "more than %d scans", JPEG_MAX_SCANS);
        longjmp(c->jb, 1);
    }
}

static int decode_jpeg(const uint8_t *data, size_t n, const char *name, hp_image *out, hp_err *e) {
    jpeg_ctx *c = calloc(1, sizeof *c);
    if (!c) return hp_errf(e, "%s: out of memory", name);
    int rc = -1;
    c->cinfo.err = jpeg_std_error(&c->pub);
    c->pub.error_exit = jpeg_on_error;
    c->pub.emit_message = jpeg_on_message;
    if (setjmp(c->jb)) {
        if (c->truncated)
            hp_errf(e, "%s: truncated JPEG (data ends at byte %zu)", name, n);
        else
            hp_errf(e, "%s: corrupt JPEG: %s", name, c->msg);
        hp_image_free(out);
        goto done;
    }
    jpeg_create_decompress(&c->cinfo);
    c->progress.progress_monitor = jpeg_on_progress;
    c->cinfo.progress = &c->progress;
    c->cinfo.mem->max_memory_to_use = 2048L << 20;
    jpeg_mem_src(&c->cinfo, data, (unsigned long)n);
    if (jpeg_read_header(&c->cinfo, TRUE) != JPEG_HEADER_OK) {
        hp_errf(e, "%s: JPEG has tables but no image", name);
        goto done;
    }
    int nc = c->cinfo.num_components;
    if (nc != 1 && nc != 3 && nc != 4) {
        hp_errf(e, "%s: JPEG with %d components is not supported (1, 3 or 4)", name, nc);
        goto done;
    }
    if (check_dims(name, "JPEG", c->cinfo.image_width, c->cinfo.image_height, e)) goto done;
    c->cinfo.out_color_space = nc == 1 ? JCS_GRAYSCALE : nc == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_start_decompress(&c->cinfo);
    int w = (int)c->cinfo.output_width, h = (int)c->cinfo.output_height;
    if (c->cinfo.output_components != nc) {
        hp_errf(e, "%s: JPEG decoder gave %d components for %d", name, c->cinfo.output_components, nc);
        goto done;
    }
    if (alloc_rgb(out, w, h, name, e)) goto done;
    c->row = malloc((size_t)w * nc);
    if (!c->row) {
        hp_errf(e, "%s: out of memory", name);
        goto done;
    }
    while ((int)c->cinfo.output_scanline < h) {
        uint8_t *d = out->rgb + (size_t)c->cinfo.output_scanline * w * 3;
        JSAMPROW rp = c->row;
        if (jpeg_read_scanlines(&c->cinfo, &rp, 1) != 1) {
            hp_errf(e, "%s: JPEG decoder stopped at row %d of %d", name, (int)c->cinfo.output_scanline, h);
            hp_image_free(out);
            goto done;
        }
        const uint8_t *s = c->row;
        for (int x = 0; x < w; x++, d += 3) {
            if (nc == 1) {
                d[0] = d[1] = d[2] = s[x];
            } else if (nc == 3) {
                memcpy(d, s + 3 * x, 3);
            } else { /* PIL: "CMYK;I" (inverted Adobe CMYK), then cmyk2rgb */
                int nk = s[4 * x + 3]; /* 255 - K, K = 255 - stored */
                for (int j = 0; j < 3; j++) {
                    int t = (255 - s[4 * x + j]) * nk + 128;
                    int v = nk - (((t >> 8) + t) >> 8);
                    d[j] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
            }
        }
    }
    jpeg_finish_decompress(&c->cinfo);
    rc = 0;
done:
    jpeg_destroy_decompress(&c->cinfo);
    free(c->row);
    free(c);
    return rc;
}

/* ---------------------------------------------------------------- entry points */

int hp_image_decode(const void *data, size_t n, const char *name, hp_image *out, hp_err *e) {
    const uint8_t *p = data;
    memset(out, 0, sizeof *out);
    if (n == 0) return hp_errf(e, "%s: empty file, not an image", name);
    if (n >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8)) return decode_png(p, n, name, out, e);
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return decode_jpeg(p, n, name, out, e);
    const char *other = NULL;
    if (n >= 6 && (!memcmp(p, "GIF87a", 6) || !memcmp(p, "GIF89a", 6))) other = "GIF";
    else if (n >= 2 && !memcmp(p, "BM", 2)) other = "BMP";
    else if (n >= 12 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4)) other = "WebP";
    else if (n >= 4 && (!memcmp(p, "II*\0", 4) || !memcmp(p, "MM\0*", 4))) other = "TIFF";
    if (other) return hp_errf(e, "%s: %s images are not supported (PNG and JPEG only)", name, other);
    if ((n < 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", n)) || (n < 3 && !memcmp(p, "\xFF\xD8\xFF", n)))
        return hp_errf(e, "%s: truncated image (only %zu bytes of a PNG/JPEG signature)", name, n);
    return hp_errf(e, "%s: not an image (no PNG or JPEG signature; first bytes %02x %02x %02x %02x)", name,
                   p[0], n > 1 ? p[1] : 0, n > 2 ? p[2] : 0, n > 3 ? p[3] : 0);
}

int hp_image_load(const char *path, hp_image *out, hp_err *e) {
    char *data;
    size_t n;
    memset(out, 0, sizeof *out);
    if (hp_read_file(path, &data, &n, e)) return -1;
    int rc = hp_image_decode(data, n, path, out, e);
    free(data);
    return rc;
}

int hp_image_from_grey(const uint8_t *grey, int w, int h, hp_image *out, hp_err *e) {
    memset(out, 0, sizeof *out);
    if (w <= 0 || h <= 0 || w > HP_IMAGE_MAX_SIDE || h > HP_IMAGE_MAX_SIDE ||
        (int64_t)w * h > HP_IMAGE_MAX_PIXELS)
        return hp_errf(e, "grey image: bad size %dx%d", w, h);
    if (alloc_rgb(out, w, h, "grey image", e)) return -1;
    for (size_t i = 0; i < (size_t)w * h; i++) out->rgb[3 * i] = out->rgb[3 * i + 1] = out->rgb[3 * i + 2] = grey[i];
    return 0;
}

void hp_image_free(hp_image *im) {
    if (!im) return;
    free(im->rgb);
    im->rgb = NULL;
    im->w = im->h = 0;
}
