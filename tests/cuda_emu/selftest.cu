/* selftest.cu (cuda_emu): the emulator's own primitives against what the CUDA programming guide
 * and the PTX ISA specify, before the project's kernels are trusted to it: warp shuffles (all
 * four kinds, full and 16-lane widths), ballot, __syncthreads_count, shared memory poisoned at
 * block start, and mma.m16n8k16 / ldmatrix.x4.trans against a plain fp64 matrix product with
 * fragments placed per the PTX ISA tables. Built and run by `make emu` / test_cuda_emu.sh.
 * Exit 0 all passed, 1 a failure. */
#include <cuda_bf16.h>
#include <stdio.h>
#include <stdlib.h>

static int n_checks, n_fail;

static void expect(int ok, const char *what) {
    n_checks++;
    n_fail += !ok;
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
}

/* out[4][64]: xor 5, down 3, up 3, idx (lane*7) for width 32, and the same with width 16 */
static __global__ void shuffles(int *out) {
    int l = threadIdx.x;
    out[0 * 64 + l] = __shfl_xor_sync(0xffffffffu, l, 5);
    out[1 * 64 + l] = __shfl_down_sync(0xffffffffu, l, 3);
    out[2 * 64 + l] = __shfl_up_sync(0xffffffffu, l, 3);
    out[3 * 64 + l] = __shfl_sync(0xffffffffu, l, l * 7);
    out[0 * 64 + 32 + l] = __shfl_xor_sync(0xffffffffu, l, 17, 16);
    out[1 * 64 + 32 + l] = __shfl_down_sync(0xffffffffu, l, 3, 16);
    out[2 * 64 + 32 + l] = __shfl_up_sync(0xffffffffu, l, 3, 16);
    out[3 * 64 + 32 + l] = __shfl_sync(0xffffffffu, l, l * 7, 16);
}

static __global__ void votes(unsigned *ballot, int *count, unsigned *poison) {
    __shared__ unsigned sh[64];
    int t = threadIdx.x;
    if (t == 0) *poison = sh[63]; /* never written in this block */
    __syncthreads();
    ballot[t >> 5] = __ballot_sync(0xffffffffu, t % 3 == 0);
    int c = __syncthreads_count(t % 5 == 0);
    if (t == 0) *count = c;
    sh[t] = t;
}

/* D = A·B + C with A 16×16 row-major, B 16×8 (B[k][n]) as bf16 bit patterns, C/D 16×8. The B
 * fragments come once from registers and once through ldmatrix.x4.trans of B stored [k][n]
 * (matrix 0: k 0-7, matrix 1: k 8-15; n 0-7; matrices 2, 3 repeat them). */
static __global__ void mma_check(float *d_reg, float *d_ldm, const unsigned short *A,
                                 const unsigned short *B, const float *C) {
    __shared__ __align__(16) unsigned short Bs[16 * 8];
    int lane = threadIdx.x, gr = lane >> 2, tg = lane & 3;
    for (int i = lane; i < 128; i += 32) Bs[i] = B[i];
    __syncthreads();
    uint32_t a[4];
    for (int r = 0; r < 4; r++) {
        int row = gr + 8 * (r & 1), col = 2 * tg + 8 * (r >> 1);
        a[r] = A[row * 16 + col] | (uint32_t)A[row * 16 + col + 1] << 16;
    }
    uint32_t b[2];
    for (int r = 0; r < 2; r++) {
        int k = 2 * tg + 8 * r;
        b[r] = B[k * 8 + gr] | (uint32_t)B[(k + 1) * 8 + gr] << 16;
    }
    float c[4], c2[4];
    for (int i = 0; i < 4; i++) c[i] = c2[i] = C[(gr + 8 * (i >> 1)) * 8 + 2 * tg + (i & 1)];
    hp_emu_mma_bf16_16816(c, a, b[0], b[1]);
    uint32_t v[4];
    hp_emu_ldmatrix_x4_trans(v, Bs + ((lane & 7) + ((lane >> 3) & 1) * 8) * 8);
    hp_emu_mma_bf16_16816(c2, a, v[0], v[1]);
    for (int i = 0; i < 4; i++) {
        int o = (gr + 8 * (i >> 1)) * 8 + 2 * tg + (i & 1);
        d_reg[o] = c[i];
        d_ldm[o] = c2[i];
    }
}

template <class T> static T *dev(size_t n) {
    void *p = NULL;
    if (cudaMalloc(&p, n * sizeof(T)) != cudaSuccess) {
        printf("FAIL cudaMalloc\n");
        exit(1);
    }
    return (T *)p;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int *sh = dev<int>(256), hs[256];
    shuffles<<<1, 32>>>(sh);
    cudaMemcpy(hs, sh, sizeof hs, cudaMemcpyDeviceToHost);
    int ok[4] = {1, 1, 1, 1};
    for (int w = 0; w < 2; w++) {
        int width = w ? 16 : 32;
        for (int l = 0; l < 32; l++) {
            int base = l & ~(width - 1), x = l ^ (w ? 17 : 5);
            ok[0] &= hs[0 * 64 + 32 * w + l] == (x < base + width ? x : l);
            ok[1] &= hs[1 * 64 + 32 * w + l] == (l - base + 3 < width ? l + 3 : l);
            ok[2] &= hs[2 * 64 + 32 * w + l] == (l - base >= 3 ? l - 3 : l);
            ok[3] &= hs[3 * 64 + 32 * w + l] == base + ((l * 7) & (width - 1));
        }
    }
    expect(ok[0], "__shfl_xor_sync (width 32; width 16, xor into the next segment keeps the own value)");
    expect(ok[1], "__shfl_down_sync (the top delta lanes of a segment keep their value)");
    expect(ok[2], "__shfl_up_sync (the bottom delta lanes of a segment keep their value)");
    expect(ok[3], "__shfl_sync (source lane modulo width, within the segment)");

    unsigned *ballot = dev<unsigned>(2), *poison = dev<unsigned>(1), hb[2], hp;
    int *count = dev<int>(1), hc;
    votes<<<1, 64>>>(ballot, count, poison);
    votes<<<1, 64>>>(ballot, count, poison); /* the second block must see poison again, not 63 */
    cudaMemcpy(hb, ballot, sizeof hb, cudaMemcpyDeviceToHost);
    cudaMemcpy(&hc, count, sizeof hc, cudaMemcpyDeviceToHost);
    cudaMemcpy(&hp, poison, sizeof hp, cudaMemcpyDeviceToHost);
    unsigned e0 = 0, e1 = 0;
    for (int t = 0; t < 64; t++)
        if (t % 3 == 0) (t < 32 ? e0 : e1) |= 1u << (t & 31);
    expect(hb[0] == e0 && hb[1] == e1, "__ballot_sync per warp");
    expect(hc == 13, "__syncthreads_count over the block (13 of 64)");
    expect(hp == 0xffffffffu, "shared memory reads 0xff.. until written, in every block");

    unsigned short hA[256], hB[128];
    float hC[128], hr[128], hl[128];
    srand(12345);
    for (int i = 0; i < 256; i++) hA[i] = __float2bfloat16_rn((float)(rand() % 2001 - 1000) / 256.0f).__x;
    for (int i = 0; i < 128; i++) hB[i] = __float2bfloat16_rn((float)(rand() % 2001 - 1000) / 256.0f).__x;
    for (int i = 0; i < 128; i++) hC[i] = (float)(rand() % 100) / 8.0f;
    unsigned short *dA = dev<unsigned short>(256), *dB = dev<unsigned short>(128);
    float *dC = dev<float>(128), *dr = dev<float>(128), *dl = dev<float>(128);
    cudaMemcpy(dA, hA, sizeof hA, cudaMemcpyHostToDevice);
    cudaMemcpy(dB, hB, sizeof hB, cudaMemcpyHostToDevice);
    cudaMemcpy(dC, hC, sizeof hC, cudaMemcpyHostToDevice);
    mma_check<<<1, 32>>>(dr, dl, dA, dB, dC);
    cudaMemcpy(hr, dr, sizeof hr, cudaMemcpyDeviceToHost);
    cudaMemcpy(hl, dl, sizeof hl, cudaMemcpyDeviceToHost);
    double worst = 0, worst_l = 0;
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 8; n++) {
            double s = hC[m * 8 + n];
            for (int k = 0; k < 16; k++) {
                __nv_bfloat16 a = {hA[m * 16 + k]}, b = {hB[k * 8 + n]};
                s += (double)__bfloat162float(a) * __bfloat162float(b);
            }
            double d = fabs(hr[m * 8 + n] - s), dl2 = fabs(hl[m * 8 + n] - s);
            worst = d > worst ? d : worst;
            worst_l = dl2 > worst_l ? dl2 : worst_l;
        }
    expect(worst < 1e-3, "mma.m16n8k16 bf16 = A·B + C (fragments per the PTX ISA tables)");
    expect(worst_l < 1e-3, "ldmatrix.x4.trans gives mma's B fragments from B stored [k][n]");
    printf("%d checks, %d failed\n", n_checks, n_fail);
    return n_fail ? 1 : 0;
}
