/* llava_proc.c: transformers' LlavaNextImageProcessor (4.46) and the image-feature count of
 * LlavaNextForConditionalGeneration.pack_image_features, on 8-bit RGB images.
 *
 * Pipeline (HF's order, all on uint8 images until the rescale):
 *   best = select_best_resolution((h, w), pinpoints)
 *   resize (PIL bicubic) to _get_patch_output_size: the aspect-preserving fit into best
 *   pad with zeros by (paste_y, paste_x) = ((bh-nh)//2, (bw-nw)//2) on BOTH sides (so an odd
 *     remainder leaves the padded image one pixel short of best, and the last row/column of
 *     tiles one pixel short of crop)
 *   cut crop x crop tiles in row-major order (edge tiles may be smaller)
 *   base tile: the whole image resized (not aspect-preserving) to shortest_edge^2, first
 *   every tile: resize its shortest edge to shortest_edge (PIL; identical size = copy), centre
 *     crop to crop x crop, x*(1/255) in float64 rounded to float32, (x - mean)/std in float32.
 *
 * PIL's resize is reproduced operation for operation (Pillow's ImagingResample for 8-bit
 * images): per output pixel a window of the bicubic kernel (a = -0.5) stretched by the
 * downscale factor, weights normalised in double, converted to 22-bit fixed point, horizontal
 * pass first, each pass rounded (+half, >> 22) and clipped to 0..255. Expressions keep PIL's
 * evaluation order so that the double weights, and hence the output, are bit-identical.
 *
 * The image-token count follows pack_image_features (grid from the best resolution, unpadding
 * to the original aspect, one image_newline per kept row, no CLS in the base tile) with the
 * unpadding in exact integers, as current transformers do (see hp_llava_unpad_shape). */
#include "llava_proc.h"

#include <math.h>
#include <stdlib.h>

/* Bit parity with PIL needs the same double roundings: no fused multiply-adds (GCC's ISO C modes
 * already contract nothing; clang contracts within expressions unless told). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define RESAMPLE_BITS 22 /* 32 - 8 bits of pixel - 2 bits of headroom for overshoot */

static double bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* One axis of a resize from in_size to out_size: for output pixel i the input window
 * [first[i], first[i] + count[i]) with fixed-point weights w[i * ksize + k]. */
typedef struct axis_weights {
    int ksize;
    int *first, *count;
    int32_t *w;
} axis_weights;

static void axis_free(axis_weights *a) {
    free(a->first);
    free(a->count);
    free(a->w);
}

static int axis_init(axis_weights *a, int in_size, int out_size) {
    memset(a, 0, sizeof *a);
    double scale = (double)(float)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    a->ksize = (int)ceil(support) * 2 + 1;
    double *k = malloc((size_t)a->ksize * sizeof *k);
    a->first = malloc((size_t)out_size * sizeof *a->first);
    a->count = malloc((size_t)out_size * sizeof *a->count);
    a->w = calloc((size_t)out_size * a->ksize, sizeof *a->w);
    if (!k || !a->first || !a->count || !a->w) {
        free(k);
        axis_free(a);
        return -1;
    }
    for (int i = 0; i < out_size; i++) {
        double center = 0.0 + (i + 0.5) * scale, ss = 1.0 / filterscale, ww = 0.0;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        int cnt = hi - lo;
        for (int x = 0; x < cnt; x++) {
            k[x] = bicubic((x + lo - center + 0.5) * ss);
            ww += k[x];
        }
        for (int x = 0; x < cnt; x++) {
            if (ww != 0.0) k[x] /= ww;
            double f = k[x] * (1 << RESAMPLE_BITS);
            a->w[(size_t)i * a->ksize + x] = (int32_t)(k[x] < 0 ? -0.5 + f : 0.5 + f);
        }
        a->first[i] = lo;
        a->count[i] = cnt;
    }
    free(k);
    return 0;
}

static inline uint8_t clip_fixed(int32_t v) {
    if (v <= 0) return 0;
    v >>= RESAMPLE_BITS;
    return (uint8_t)(v > 255 ? 255 : v);
}

/* PIL Image.resize((dw, dh), BICUBIC) of an RGB8 image; src and dst are h*w*3 row-major. */
static int pil_resize_bicubic(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh) {
    if (sw == dw && sh == dh) {
        memcpy(dst, src, (size_t)sw * sh * 3);
        return 0;
    }
    axis_weights ax, ay;
    if (axis_init(&ay, sh, dh)) return -1;
    const uint8_t *in = src;
    int iw = sw, row0 = 0;
    uint8_t *tmp = NULL;
    if (dw != sw) {
        /* horizontal pass over the source rows the vertical pass reads */
        row0 = ay.first[0];
        int rows = ay.first[dh - 1] + ay.count[dh - 1] - row0;
        if (axis_init(&ax, sw, dw)) {
            axis_free(&ay);
            return -1;
        }
        tmp = malloc((size_t)rows * dw * 3);
        if (!tmp) {
            axis_free(&ax);
            axis_free(&ay);
            return -1;
        }
        for (int y = 0; y < rows; y++) {
            const uint8_t *s = src + (size_t)(y + row0) * sw * 3;
            uint8_t *d = tmp + (size_t)y * dw * 3;
            for (int x = 0; x < dw; x++) {
                const int32_t *w = ax.w + (size_t)x * ax.ksize;
                const uint8_t *p = s + (size_t)ax.first[x] * 3;
                int32_t r = 1 << (RESAMPLE_BITS - 1), g = r, b = r;
                for (int k = 0; k < ax.count[x]; k++, p += 3) {
                    r += p[0] * w[k];
                    g += p[1] * w[k];
                    b += p[2] * w[k];
                }
                d[3 * x] = clip_fixed(r);
                d[3 * x + 1] = clip_fixed(g);
                d[3 * x + 2] = clip_fixed(b);
            }
        }
        axis_free(&ax);
        in = tmp;
        iw = dw;
    }
    if (dh != sh) {
        for (int y = 0; y < dh; y++) {
            const int32_t *w = ay.w + (size_t)y * ay.ksize;
            const uint8_t *s = in + (size_t)(ay.first[y] - row0) * iw * 3;
            uint8_t *d = dst + (size_t)y * dw * 3;
            for (int x = 0; x < dw * 3; x++) {
                int32_t v = 1 << (RESAMPLE_BITS - 1);
                for (int k = 0; k < ay.count[y]; k++) v += s[(size_t)k * iw * 3 + x] * w[k];
                d[x] = clip_fixed(v);
            }
        }
    } else {
        memcpy(dst, in, (size_t)dw * dh * 3);
    }
    free(tmp);
    axis_free(&ay);
    return 0;
}

void hp_llava_proc_defaults(hp_llava_proc_cfg *c, int crop, int patch) {
    static const int grid[5][2] = {{1, 2}, {2, 1}, {2, 2}, {3, 1}, {1, 3}};
    memset(c, 0, sizeof *c);
    c->crop = crop;
    c->shortest_edge = crop;
    c->patch = patch;
    c->rescale = 1.0 / 255.0;
    c->n_pinpoints = 5;
    for (int i = 0; i < 5; i++) {
        c->pinpoints[i][0] = grid[i][0] * crop;
        c->pinpoints[i][1] = grid[i][1] * crop;
    }
    /* float32 of the double values, as numpy's np.array(mean, dtype=float32) rounds them */
    const double mean[3] = {0.48145466, 0.4578275, 0.40821073};
    const double std[3] = {0.26862954, 0.26130258, 0.27577711};
    for (int i = 0; i < 3; i++) {
        c->mean[i] = (float)mean[i];
        c->std[i] = (float)std[i];
    }
}

static int cfg_check(const hp_llava_proc_cfg *c, hp_err *e) {
    if (c->crop <= 0 || c->crop > 4096 || c->patch <= 0 || c->patch > c->crop ||
        c->shortest_edge < c->crop || c->shortest_edge > 4096)
        return hp_errf(e, "llava image processor: bad sizes (crop %d, shortest_edge %d, patch %d; need "
                       "0 < patch <= crop <= shortest_edge <= 4096)", c->crop, c->shortest_edge, c->patch);
    if (c->n_pinpoints < 1 || c->n_pinpoints > 64)
        return hp_errf(e, "llava image processor: %d grid pinpoints (1..64)", c->n_pinpoints);
    for (int i = 0; i < c->n_pinpoints; i++)
        if (c->pinpoints[i][0] <= 0 || c->pinpoints[i][1] <= 0 || c->pinpoints[i][0] > 16384 ||
            c->pinpoints[i][1] > 16384)
            return hp_errf(e, "llava image processor: pinpoint %d is %dx%d", i, c->pinpoints[i][0],
                           c->pinpoints[i][1]);
    for (int i = 0; i < 3; i++)
        if (!(c->std[i] != 0.0f) || !isfinite(c->mean[i]) || !isfinite(c->std[i]))
            return hp_errf(e, "llava image processor: bad mean/std for channel %d", i);
    if (!(c->rescale > 0) || !isfinite(c->rescale))
        return hp_errf(e, "llava image processor: bad rescale factor %g", c->rescale);
    return 0;
}

int hp_llava_best_resolution(const hp_llava_proc_cfg *c, int h, int w) {
    int best = -1;
    int64_t max_eff = 0;
    double min_waste = INFINITY;
    for (int i = 0; i < c->n_pinpoints; i++) {
        int ph = c->pinpoints[i][0], pw = c->pinpoints[i][1];
        double sw = (double)pw / w, sh = (double)ph / h, scale = sw < sh ? sw : sh;
        int64_t dw = (int64_t)(w * scale), dh = (int64_t)(h * scale);
        int64_t eff = dw * dh < (int64_t)w * h ? dw * dh : (int64_t)w * h;
        double waste = (double)((int64_t)pw * ph - eff);
        if (eff > max_eff || (eff == max_eff && waste < min_waste)) {
            max_eff = eff;
            min_waste = waste;
            best = i;
        }
    }
    return best;
}

/* _get_patch_output_size: the aspect-preserving fit of (h, w) into (th, tw). */
static void fit_size(int h, int w, int th, int tw, int *nh, int *nw) {
    double sw = (double)tw / w, sh = (double)th / h;
    if (sw < sh) {
        double v = ceil(h * sw);
        *nw = tw;
        *nh = v < th ? (int)v : th;
    } else {
        double v = ceil(w * sh);
        *nh = th;
        *nw = v < tw ? (int)v : tw;
    }
}

/* One tile through LlavaNextImageProcessor._preprocess: shortest-edge resize, centre crop,
 * rescale, normalise, channel-first into out[3][crop][crop]. */
static int tile_to_pixels(const uint8_t *t, int th, int tw, const hp_llava_proc_cfg *c, float *out) {
    int se = c->shortest_edge, rh, rw;
    if (tw <= th) {
        rw = se;
        rh = (int)((double)((int64_t)se * th) / tw);
    } else {
        rh = se;
        rw = (int)((double)((int64_t)se * tw) / th);
    }
    uint8_t *r = malloc((size_t)rh * rw * 3);
    if (!r || pil_resize_bicubic(t, tw, th, r, rw, rh)) {
        free(r);
        return -1;
    }
    int top = (rh - c->crop) / 2, left = (rw - c->crop) / 2, n = c->crop;
    float lut[3][256];
    for (int ch = 0; ch < 3; ch++)
        for (int v = 0; v < 256; v++) lut[ch][v] = ((float)(v * c->rescale) - c->mean[ch]) / c->std[ch];
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < n; y++) {
            const uint8_t *s = r + ((size_t)(top + y) * rw + left) * 3 + ch;
            float *d = out + ((size_t)ch * n + y) * n;
            for (int x = 0; x < n; x++) d[x] = lut[ch][s[3 * x]];
        }
    free(r);
    return 0;
}

int hp_llava_preprocess(const hp_image *im, const hp_llava_proc_cfg *c, hp_pixels *out, hp_err *e) {
    memset(out, 0, sizeof *out);
    if (cfg_check(c, e)) return -1;
    int h = im->h, w = im->w;
    if (!im->rgb || h <= 0 || w <= 0 || h > HP_IMAGE_MAX_SIDE || w > HP_IMAGE_MAX_SIDE)
        return hp_errf(e, "llava image processor: bad image (%dx%d)", w, h);
    int bi = hp_llava_best_resolution(c, h, w);
    int bh = c->pinpoints[bi][0], bw = c->pinpoints[bi][1], nh, nw;
    fit_size(h, w, bh, bw, &nh, &nw);
    int py = (bh - nh) / 2, px = (bw - nw) / 2, ph = nh + 2 * py, pw = nw + 2 * px, n = c->crop;
    int gy = (ph + n - 1) / n, gx = (pw + n - 1) / n;
    size_t tile = (size_t)3 * n * n;
    out->n_tiles = 1 + gy * gx;
    out->size = n;
    out->orig_h = h;
    out->orig_w = w;
    out->best_h = bh;
    out->best_w = bw;
    out->data = malloc(out->n_tiles * tile * sizeof *out->data);
    uint8_t *padded = calloc((size_t)ph * pw * 3, 1), *resized = malloc((size_t)nh * nw * 3);
    int se = c->shortest_edge;
    uint8_t *base = malloc((size_t)se * se * 3), *t = malloc(tile);
    int rc = -1;
    if (!out->data || !padded || !resized || !base || !t) goto oom;
    if (pil_resize_bicubic(im->rgb, w, h, base, se, se) || tile_to_pixels(base, se, se, c, out->data))
        goto oom;
    if (pil_resize_bicubic(im->rgb, w, h, resized, nw, nh)) goto oom;
    for (int y = 0; y < nh; y++)
        memcpy(padded + ((size_t)(y + py) * pw + px) * 3, resized + (size_t)y * nw * 3, (size_t)nw * 3);
    for (int ty = 0; ty < gy; ty++)
        for (int tx = 0; tx < gx; tx++) {
            int y0 = ty * n, x0 = tx * n, th = ph - y0 < n ? ph - y0 : n, tw = pw - x0 < n ? pw - x0 : n;
            for (int y = 0; y < th; y++)
                memcpy(t + (size_t)y * tw * 3, padded + ((size_t)(y0 + y) * pw + x0) * 3, (size_t)tw * 3);
            if (tile_to_pixels(t, th, tw, c, out->data + (1 + (size_t)ty * gx + tx) * tile)) goto oom;
        }
    rc = 0;
    goto done;
oom:
    hp_errf(e, "llava image processor: out of memory for a %dx%d image", w, h);
    hp_pixels_free(out);
done:
    free(padded);
    free(resized);
    free(base);
    free(t);
    return rc;
}

int hp_llava_num_tiles(const hp_llava_proc_cfg *c, int orig_h, int orig_w) {
    if (orig_h <= 0 || orig_w <= 0 || c->crop <= 0 || c->n_pinpoints < 1) return -1;
    int bi = hp_llava_best_resolution(c, orig_h, orig_w);
    int bh = c->pinpoints[bi][0], bw = c->pinpoints[bi][1], nh, nw;
    fit_size(orig_h, orig_w, bh, bw, &nh, &nw);
    int ph = nh + (bh - nh) / 2 * 2, pw = nw + (bw - nw) / 2 * 2;
    return 1 + ((ph + c->crop - 1) / c->crop) * ((pw + c->crop - 1) / c->crop);
}

void hp_pixels_free(hp_pixels *p) {
    if (!p) return;
    free(p->data);
    p->data = NULL;
    p->n_tiles = 0;
}

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void hp_llava_unpad_shape(const hp_llava_proc_cfg *c, int orig_h, int orig_w, int *gh, int *gw,
                          int *uh, int *uw) {
    *gh = *gw = *uh = *uw = 0;
    if (orig_h <= 0 || orig_w <= 0 || c->crop <= 0 || c->patch <= 0 || c->n_pinpoints < 1) return;
    int bi = hp_llava_best_resolution(c, orig_h, orig_w);
    /* get_anyres_image_grid_shape: best // vision image_size (= crop) */
    *gh = c->pinpoints[bi][0] / c->crop;
    *gw = c->pinpoints[bi][1] / c->crop;
    int p = c->crop / c->patch, ch = *gh * p, cw = *gw * p;
    /* unpad_image. transformers 4.46 computes the kept rows as int(h * (cw / w)) in floats,
     * which falls one short when the exact value is an integer that the division rounds just
     * below (47 * (12 / 188) = 2.9999999999999996); its processor counts with integer division,
     * so the two disagree and the model raises for those sizes (~0.02% of them). Later
     * transformers use int(round(h * (cw / w), 7)) in both places, which for sides <= 16384
     * equals the exact floor (h * cw) // w taken here: the same count as 4.46 wherever 4.46
     * works, and as current transformers everywhere. */
    if ((double)orig_w / orig_h > (double)cw / ch) { /* HF's float comparison (= exact order) */
        int64_t nh = (int64_t)orig_h * cw / orig_w, pad = floor_div(ch - nh, 2);
        *uh = (int)(ch - 2 * pad);
        *uw = cw;
    } else {
        int64_t nw = (int64_t)orig_w * ch / orig_h, pad = floor_div(cw - nw, 2);
        *uh = ch;
        *uw = (int)(cw - 2 * pad);
    }
}

int hp_llava_num_image_tokens(const hp_llava_proc_cfg *c, int orig_h, int orig_w) {
    if (orig_h <= 0 || orig_w <= 0 || c->crop <= 0 || c->patch <= 0 || c->n_pinpoints < 1) return -1;
    int gh, gw, uh, uw, p = c->crop / c->patch;
    hp_llava_unpad_shape(c, orig_h, orig_w, &gh, &gw, &uh, &uw);
    return p * p + uh * (uw + 1);
}
