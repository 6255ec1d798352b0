/* im2col.c: the patch embedding of a vision transformer as a matrix product. A Conv2d with
 * kernel = stride = p and no padding over a [C, S, S] image is exactly: cut the image into
 * (S/p)^2 non-overlapping p x p patches, lay each out as one row of C*p*p values in the conv
 * weight's (c, ky, kx) order, and multiply by the weight reshaped [D, C*p*p]. Rows are in
 * raster order (patch row, then patch column), the order of conv_out.flatten(2). */
#include "ops_cpu.h"

void hp_cpu_im2col_patches(float *out, const float *img, int C, int S, int p) {
    int g = S / p; /* patches per side; a remainder of S is ignored, as the strided conv does */
    size_t K = (size_t)C * p * p;
#pragma omp parallel for schedule(static) if ((size_t)g * g * K > 65536)
    for (int gy = 0; gy < g; gy++)
        for (int gx = 0; gx < g; gx++) {
            float *row = out + ((size_t)gy * g + gx) * K;
            for (int c = 0; c < C; c++)
                for (int ky = 0; ky < p; ky++) {
                    const float *src = img + ((size_t)c * S + (size_t)gy * p + ky) * S + (size_t)gx * p;
                    float *dst = row + ((size_t)c * p + ky) * p;
                    for (int kx = 0; kx < p; kx++) dst[kx] = src[kx];
                }
        }
}
