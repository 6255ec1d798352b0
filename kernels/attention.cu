/* attention.cu: KV-cache writes and causal / sliding-window GQA attention over packed tokens,
 * with the semantics of hp_cpu_kv_store / hp_cpu_attention: token t (sequence slot seq[t],
 * position pos[t]) attends, for each query head h, to cache positions j of its slot with
 * j <= pos[t] and, when window > 0, j > pos[t] - window, in KV head h / (H/KV).
 *
 * Two kernels, kept under names that say what they do (the variant table is at the end):
 *
 * attn_prefill_tiled: FlashAttention-2 style. A block of 4 warps takes 64 consecutive tokens
 *   and one query head; 64-key tiles of K and V go through shared memory; each warp owns 16
 *   query rows and runs S = Q·K^T and O += P·V on the tensor cores (mma.sync m16n8k16 bf16,
 *   fp32 accumulators) with an online softmax in registers, so no T×T score matrix ever
 *   exists. Rows of one tile may belong to different sequences: the block walks the tile's
 *   sequences one "run" at a time (all rows of that slot), loading the union of their key
 *   ranges and masking per row. Dh is a template parameter (64, 128) so the fragments stay in
 *   registers.
 *
 * attn_decode_split: one block per (token, KV head, key chunk), fp32 SIMT. All query heads of
 *   a GQA group share each K/V row loaded (read once per group, not per head); long ranges are
 *   split over several blocks (split-K, "flash-decoding") whose partial (max, sum, acc) are
 *   merged by attn_split_combine. It handles any even Dh <= 256 and any packing, and is the
 *   path for decode steps, where each token has its own sequence and the work is reading the
 *   cache (memory-bound: SIMT arithmetic keeps up with the bytes).
 *
 * AUTO: a tiny kernel marks each 64-token tile "dense" when it holds at most 4 sequences; the
 *   tiled kernel takes dense tiles and the split kernel the tokens of the others, both decided
 *   on the device, so the host never needs seq[] (it is already on the device).
 *
 * Scores are scaled by log2(e)/sqrt(Dh) and exponentiated with exp2f, the same function as
 * the CPU's exp((s - max)) up to fp32 rounding. The tiled kernel rounds P to bf16 for the
 * P·V product (as FlashAttention does); the split kernel stays fp32 throughout.
 *
 * Cache contents are read only inside the union of the key ranges of the tokens of a run
 * (tiled) or of one token (split); key slots past that are zero-filled in shared memory, so
 * uninitialised cache memory (possibly NaN bit patterns) never meets a zero weight. */
#include "ops_cuda.h"

#include <cuda_bf16.h>
#include <limits.h>

#define LOG2E 1.4426950408889634f

/* ---- shared helpers --------------------------------------------------------------------- */

static int aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }
static int aligned4(const void *p) { return ((uintptr_t)p & 3) == 0; }

static __device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
static __device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Key range of a token, or an empty range (lo > hi) with the error bit set when its slot or
 * position is outside the cache: the row then gets 0/0 = NaN, visibly wrong. */
static __device__ __forceinline__ int key_range(const int32_t *seq, const int32_t *pos, int t,
                                                int Tcap, int window, int *lo, int *hi,
                                                unsigned *err, int report) {
    int s = seq[t], p = pos[t];
    if (s < 0 || p < 0 || p >= Tcap) {
        if (report) atomicOr(err, HP_CUDA_ERR_KV_SLOT);
        *lo = 0;
        *hi = -1;
        return -1;
    }
    *lo = (window > 0 && p - window + 1 > 0) ? p - window + 1 : 0;
    *hi = p;
    return s;
}

/* ---- KV store --------------------------------------------------------------------------- */

static __global__ void kv_store_kernel(__nv_bfloat16 *__restrict__ kc, __nv_bfloat16 *__restrict__ vc,
                                       const __nv_bfloat16 *__restrict__ k,
                                       const __nv_bfloat16 *__restrict__ v,
                                       const int32_t *__restrict__ seq,
                                       const int32_t *__restrict__ pos, int KVD, int Tcap, int vec,
                                       unsigned *err) {
    int t = blockIdx.x, s = seq[t], p = pos[t];
    if (s < 0 || p < 0 || p >= Tcap) {
        if (threadIdx.x == 0) atomicOr(err, HP_CUDA_ERR_KV_SLOT);
        return;
    }
    size_t dst = ((size_t)s * Tcap + p) * KVD, src = (size_t)t * KVD;
    if (vec) {
        for (int i = threadIdx.x; i < KVD / 8; i += blockDim.x) {
            ((uint4 *)(kc + dst))[i] = ((const uint4 *)(k + src))[i];
            ((uint4 *)(vc + dst))[i] = ((const uint4 *)(v + src))[i];
        }
    } else {
        for (int i = threadIdx.x; i < KVD; i += blockDim.x) {
            kc[dst + i] = k[src + i];
            vc[dst + i] = v[src + i];
        }
    }
}

extern "C" cudaError_t hp_cuda_kv_store(hp_bf16 *kc, hp_bf16 *vc, const hp_bf16 *k, const hp_bf16 *v,
                                        const int32_t *seq, const int32_t *pos, int T, int KVD,
                                        int Tcap, unsigned *err, cudaStream_t st) {
    if (T < 0 || KVD <= 0 || Tcap <= 0) return cudaErrorInvalidValue;
    if (T == 0) return cudaSuccess;
    int vec = KVD % 8 == 0 && aligned16(kc) && aligned16(vc) && aligned16(k) && aligned16(v);
    kv_store_kernel<<<T, 128, 0, st>>>((__nv_bfloat16 *)kc, (__nv_bfloat16 *)vc,
                                       (const __nv_bfloat16 *)k, (const __nv_bfloat16 *)v, seq, pos,
                                       KVD, Tcap, vec, err);
    return cudaGetLastError();
}

/* ---- attn_decode_split ------------------------------------------------------------------ */

#define SPLIT_THREADS 128
#define SPLIT_BK 32        /* keys per tile = warp size: one lane per key in the softmax */
#define SPLIT_MAXO 4       /* outputs per thread: a block takes gh heads with gh·Dh <= 512 */
#define SPLIT_MAXGH 32     /* heads per block at most (bounds shared memory for tiny Dh) */
#define SPLIT_MIN_KEYS 128 /* a key chunk is never split below this many keys */
#define SPLIT_MAX_DH 256
#define TILE_Q 64          /* tokens per tile of the tiled kernel (and of the dense flags) */
#define DENSE_MAX_RUNS 4   /* a tile with more sequences than this goes to the split kernel */
#define AUTO_SPLIT_MAX_T 16 /* below this many tokens AUTO uses the split kernel only */

/* Shared-memory row stride of K/V tiles in bf16: its half must be odd so that 32 lanes
 * reading 4-byte pairs of 32 different rows hit 32 different banks. */
static __host__ __device__ int split_stride(int Dh) { return Dh + ((Dh / 2) % 2 == 0 ? 2 : 4); }

static int split_heads(int G, int Dh) {
    int gh = SPLIT_THREADS * SPLIT_MAXO / Dh;
    if (gh > SPLIT_MAXGH) gh = SPLIT_MAXGH;
    if (gh > G) gh = G;
    return gh < 1 ? 1 : gh;
}

static size_t split_smem(int gh, int Dh) {
    return sizeof(float) * ((size_t)gh * Dh + (size_t)gh * SPLIT_BK + 3 * (size_t)gh) +
           2 * sizeof(__nv_bfloat16) * SPLIT_BK * (size_t)split_stride(Dh);
}

/* Blocks enough to give every SM several; chunks never shorter than SPLIT_MIN_KEYS keys of
 * the longest possible range. */
static int split_count(int T, int KV, int hchunks, int Tcap, int window, int sm_count) {
    long long base = (long long)T * KV * hchunks, target = 4LL * (sm_count > 0 ? sm_count : 132);
    int maxr = window > 0 && window < Tcap ? window : Tcap;
    long long cap = (maxr + SPLIT_MIN_KEYS - 1) / SPLIT_MIN_KEYS, ns = (target + base - 1) / base;
    if (ns > cap) ns = cap;
    if (ns > 65535) ns = 65535;
    return ns < 1 ? 1 : (int)ns;
}

/* grid (T, KV·hchunks, nsplit). With nsplit == 1 the block writes z; otherwise its partial
 * results go to pacc [T][H][nsplit][Dh] and pml [T][H][nsplit][2] (max in log2 units, sum). */
static __global__ void __launch_bounds__(SPLIT_THREADS)
attn_split_kernel(__nv_bfloat16 *__restrict__ z, float *__restrict__ pacc, float *__restrict__ pml,
                  const __nv_bfloat16 *__restrict__ q, const __nv_bfloat16 *__restrict__ kc,
                  const __nv_bfloat16 *__restrict__ vc, const int32_t *__restrict__ seq,
                  const int32_t *__restrict__ pos, const unsigned char *__restrict__ dense, int H,
                  int KV, int Dh, int Tcap, int window, int gh, int hchunks, int nsplit,
                  float qscale, int vec, unsigned *err) {
    extern __shared__ float sm[];
    int t = blockIdx.x, split = blockIdx.z, tid = threadIdx.x;
    if (dense && dense[t / TILE_Q]) return; /* the tiled kernel owns this token */
    int G = H / KV, g = blockIdx.y / hchunks, hc = blockIdx.y - g * hchunks;
    int h0 = g * G + hc * gh, nh = min(gh, G - hc * gh), KS = split_stride(Dh), KVD = KV * Dh;
    float *qs = sm, *ps = qs + gh * Dh, *ms = ps + gh * SPLIT_BK, *ls = ms + gh, *cs = ls + gh;
    __nv_bfloat16 *ks = (__nv_bfloat16 *)(cs + gh), *vs = ks + SPLIT_BK * KS;

    int lo, hi;
    int s = key_range(seq, pos, t, Tcap, window, &lo, &hi, err,
                      tid == 0 && split == 0 && blockIdx.y == 0);
    int n = hi - lo + 1;
    int csize = ((n + nsplit - 1) / nsplit + SPLIT_BK - 1) / SPLIT_BK * SPLIT_BK;
    int c0 = lo + split * csize, c1 = min(c0 + csize, hi + 1);

    for (int i = tid; i < gh * Dh; i += SPLIT_THREADS) {
        int hh = i / Dh;
        qs[i] = hh < nh ? __bfloat162float(q[((size_t)t * H + h0 + hh) * Dh + (i - hh * Dh)]) * qscale
                        : 0.0f;
    }
    for (int i = tid; i < gh; i += SPLIT_THREADS) {
        ms[i] = -INFINITY;
        ls[i] = 0.0f;
    }
    float acc[SPLIT_MAXO];
#pragma unroll
    for (int k = 0; k < SPLIT_MAXO; k++) acc[k] = 0.0f;
    __syncthreads();

    const __nv_bfloat16 *kb = kc + ((size_t)(s < 0 ? 0 : s) * Tcap) * KVD + (size_t)g * Dh;
    const __nv_bfloat16 *vb = vc + ((size_t)(s < 0 ? 0 : s) * Tcap) * KVD + (size_t)g * Dh;
    int warp = tid >> 5, lane = tid & 31;
    for (int j0 = c0; j0 < c1; j0 += SPLIT_BK) {
        int nk = min(SPLIT_BK, c1 - j0);
        if (vec) { /* 16-byte global loads, stored as 4-byte words (rows are only 4-aligned) */
            int cpr = Dh / 8;
            for (int c = tid; c < SPLIT_BK * cpr; c += SPLIT_THREADS) {
                int r = c / cpr, col = (c - r * cpr) * 8;
                uint4 ku = make_uint4(0, 0, 0, 0), vu = ku;
                if (r < nk) {
                    ku = *(const uint4 *)(kb + (size_t)(j0 + r) * KVD + col);
                    vu = *(const uint4 *)(vb + (size_t)(j0 + r) * KVD + col);
                }
                uint32_t *kd = (uint32_t *)(ks + r * KS + col), *vd = (uint32_t *)(vs + r * KS + col);
                kd[0] = ku.x, kd[1] = ku.y, kd[2] = ku.z, kd[3] = ku.w;
                vd[0] = vu.x, vd[1] = vu.y, vd[2] = vu.z, vd[3] = vu.w;
            }
        } else {
            int cpr = Dh / 2;
            for (int c = tid; c < SPLIT_BK * cpr; c += SPLIT_THREADS) {
                int r = c / cpr, col = (c - r * cpr) * 2;
                uint32_t ku = 0, vu = 0;
                if (r < nk) {
                    ku = *(const uint32_t *)(kb + (size_t)(j0 + r) * KVD + col);
                    vu = *(const uint32_t *)(vb + (size_t)(j0 + r) * KVD + col);
                }
                *(uint32_t *)(ks + r * KS + col) = ku;
                *(uint32_t *)(vs + r * KS + col) = vu;
            }
        }
        __syncthreads();
        /* scores: pair (head i, key j); a warp shares i, so qs reads broadcast */
        for (int pi = tid; pi < gh * SPLIT_BK; pi += SPLIT_THREADS) {
            int i = pi / SPLIT_BK, j = pi - i * SPLIT_BK;
            float sc = -INFINITY;
            if (i < nh && j < nk) {
                const float2 *qi = (const float2 *)(qs + i * Dh);
                const __nv_bfloat162 *kj = (const __nv_bfloat162 *)(ks + j * KS);
                float a0 = 0.0f, a1 = 0.0f;
                for (int d = 0; d < Dh / 2; d++) {
                    float2 kf = __bfloat1622float2(kj[d]), qf = qi[d];
                    a0 = fmaf(qf.x, kf.x, a0);
                    a1 = fmaf(qf.y, kf.y, a1);
                }
                sc = a0 + a1;
            }
            ps[pi] = sc;
        }
        __syncthreads();
        /* online softmax, one warp per head, one lane per key */
        for (int i = warp; i < nh; i += SPLIT_THREADS / 32) {
            float sc = ps[i * SPLIT_BK + lane];
            float mo = ms[i], mn = fmaxf(mo, warp_max(sc)), base = mn == -INFINITY ? 0.0f : mn;
            float pj = exp2f(sc - base), sum = warp_sum(pj);
            ps[i * SPLIT_BK + lane] = pj;
            if (lane == 0) {
                float c = exp2f(mo - base);
                ls[i] = ls[i] * c + sum;
                ms[i] = mn;
                cs[i] = c;
            }
        }
        __syncthreads();
        /* acc = acc·corr + P·V; consecutive threads take consecutive d of one head */
#pragma unroll
        for (int k = 0; k < SPLIT_MAXO; k++) {
            int o = tid + k * SPLIT_THREADS;
            if (o < nh * Dh) {
                int i = o / Dh, d = o - i * Dh;
                const float *pi = ps + i * SPLIT_BK;
                float a = acc[k] * cs[i];
                for (int j = 0; j < nk; j++) a = fmaf(pi[j], __bfloat162float(vs[j * KS + d]), a);
                acc[k] = a;
            }
        }
        __syncthreads(); /* the next tile overwrites ks, vs, ps */
    }

#pragma unroll
    for (int k = 0; k < SPLIT_MAXO; k++) {
        int o = tid + k * SPLIT_THREADS;
        if (o < nh * Dh) {
            int i = o / Dh, d = o - i * Dh;
            size_t row = (size_t)t * H + h0 + i;
            if (nsplit == 1)
                z[row * Dh + d] = __float2bfloat16_rn(acc[k] / ls[i]);
            else
                pacc[(row * nsplit + split) * Dh + d] = acc[k];
        }
    }
    if (nsplit > 1)
        for (int i = tid; i < nh; i += SPLIT_THREADS) {
            size_t row = (size_t)t * H + h0 + i;
            pml[(row * nsplit + split) * 2] = ms[i];
            pml[(row * nsplit + split) * 2 + 1] = ls[i];
        }
}

/* grid (T, H): z = Σ_s 2^(m_s - M)·acc_s / Σ_s 2^(m_s - M)·l_s. Empty chunks carry m = -inf
 * and weigh 0; a token with no valid key (bad slot) has M = -inf and gets NaN. */
static __global__ void attn_split_combine(__nv_bfloat16 *__restrict__ z,
                                          const float *__restrict__ pacc,
                                          const float *__restrict__ pml,
                                          const unsigned char *__restrict__ dense, int H, int Dh,
                                          int nsplit) {
    int t = blockIdx.x;
    if (dense && dense[t / TILE_Q]) return;
    size_t row = (size_t)t * H + blockIdx.y;
    const float *ml = pml + row * nsplit * 2, *acc = pacc + row * nsplit * Dh;
    float M = -INFINITY, L = 0.0f;
    for (int s = 0; s < nsplit; s++) M = fmaxf(M, ml[2 * s]);
    for (int s = 0; s < nsplit; s++) L += exp2f(ml[2 * s] - M) * ml[2 * s + 1];
    for (int d = threadIdx.x; d < Dh; d += blockDim.x) {
        float o = 0.0f;
        for (int s = 0; s < nsplit; s++) o += exp2f(ml[2 * s] - M) * acc[(size_t)s * Dh + d];
        z[row * Dh + d] = __float2bfloat16_rn(o / L);
    }
}

/* ---- attn_prefill_tiled ----------------------------------------------------------------- */

#define TILED_THREADS 128 /* 4 warps × 16 query rows = TILE_Q */
#define TILE_K 64

#ifdef HP_CUDA_EMU /* tests/cuda_emu serves both from the PTX ISA fragment layouts */
#define mma_bf16_16816 hp_emu_mma_bf16_16816
#define ldmatrix_x4_trans hp_emu_ldmatrix_x4_trans
#else
static __device__ __forceinline__ void mma_bf16_16816(float c[4], const uint32_t a[4], uint32_t b0,
                                                      uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* Four 8×8 bf16 matrices, transposed on the way: gives the B fragments of P·V from V stored
 * [key][d] (each lane names one row address). The memory clobber keeps it after the barrier. */
static __device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const __nv_bfloat16 *p) {
    unsigned addr = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr)
                 : "memory");
}
#endif

static __device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi); /* .x (lower column) in the low half */
    return *(uint32_t *)&v;
}

static __device__ __forceinline__ uint32_t ld_u32(const __nv_bfloat16 *p) {
    return *(const uint32_t *)p;
}

/* Fragment layouts (PTX ISA, mma.m16n8k16 .bf16): lane = 4·gr + tg. A (16×16): regs hold rows
 * gr / gr+8 × cols 2tg..2tg+1 / +8. B (16×8): rows (k) 2tg..2tg+1 / +8, col (n) gr.
 * C (16×8 f32): c0,c1 row gr cols 2tg,2tg+1; c2,c3 row gr+8. grid (ceil(T/64), H). */
template <int DH>
static __global__ void __launch_bounds__(TILED_THREADS)
attn_tiled_kernel(__nv_bfloat16 *__restrict__ z, const __nv_bfloat16 *__restrict__ q,
                  const __nv_bfloat16 *__restrict__ kc, const __nv_bfloat16 *__restrict__ vc,
                  const int32_t *__restrict__ seq, const int32_t *__restrict__ pos,
                  const unsigned char *__restrict__ dense, int T, int H, int KV, int Tcap, int window,
                  float qscale, unsigned *err) {
    constexpr int STR = DH + 8; /* 16-byte rows for ldmatrix; +8 spreads 8 rows over all banks */
    constexpr int NT = DH / 8;  /* n-tiles of O */
    constexpr int KSTEPS = DH / 16;
    constexpr int CPR = DH / 8; /* 16-byte chunks per K/V row */
    __shared__ __align__(16) __nv_bfloat16 Ks[TILE_K * STR];
    __shared__ __align__(16) __nv_bfloat16 Vs[TILE_K * STR];
    __shared__ int rseq[TILE_Q], rlo[TILE_Q], rhi[TILE_Q];
    __shared__ int run_seq, run_kmin, run_kmax;

    int tile = gridDim.x - 1 - blockIdx.x; /* last tiles have the longest ranges: start them first */
    if (dense && !dense[tile]) return;     /* the split kernel owns this tile */
    int h = blockIdx.y, g = h / (H / KV), KVD = KV * DH, t0 = tile * TILE_Q;
    int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gr = lane >> 2, tg = lane & 3;

    if (tid < TILE_Q) {
        int t = t0 + tid, s = -1, lo = 0, hi = -1;
        if (t < T) s = key_range(seq, pos, t, Tcap, window, &lo, &hi, err, h == 0);
        rseq[tid] = s;
        rlo[tid] = lo;
        rhi[tid] = hi;
    }
    __syncthreads();
    int ra = warp * 16 + gr, rb = ra + 8;
    int seq_a = rseq[ra], lo_a = rlo[ra], hi_a = rhi[ra];
    int seq_b = rseq[rb], lo_b = rlo[rb], hi_b = rhi[rb];

    /* Q fragments straight from global memory into registers, once per block. */
    uint32_t qf[KSTEPS][4];
    {
        bool va = t0 + ra < T, vb = t0 + rb < T;
        const __nv_bfloat16 *qa = q + ((size_t)(va ? t0 + ra : 0) * H + h) * DH;
        const __nv_bfloat16 *qb = q + ((size_t)(vb ? t0 + rb : 0) * H + h) * DH;
#pragma unroll
        for (int ks = 0; ks < KSTEPS; ks++) {
            int col = ks * 16 + 2 * tg;
            qf[ks][0] = va ? ld_u32(qa + col) : 0u;
            qf[ks][1] = vb ? ld_u32(qb + col) : 0u;
            qf[ks][2] = va ? ld_u32(qa + col + 8) : 0u;
            qf[ks][3] = vb ? ld_u32(qb + col + 8) : 0u;
        }
    }

    float o[NT][4];
#pragma unroll
    for (int n = 0; n < NT; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.0f, l_b = 0.0f;

    for (;;) {
        __syncthreads(); /* rseq updates and the previous run's reads of Ks/Vs are done */
        if (tid == 0) { /* next run: every row of the first remaining sequence */
            int cur = -1, kmin = INT_MAX, kmax = -1;
            for (int r = 0; r < TILE_Q; r++) {
                int s = rseq[r];
                if (s < 0) continue;
                if (cur < 0) cur = s;
                if (s == cur) {
                    kmin = min(kmin, rlo[r]);
                    kmax = max(kmax, rhi[r]);
                    rseq[r] = -1;
                }
            }
            run_seq = cur;
            run_kmin = kmin;
            run_kmax = kmax;
        }
        __syncthreads();
        int cur = run_seq, kmin = run_kmin, kmax = run_kmax;
        if (cur < 0) break;
        /* rows outside this run get an empty range: fully masked, their state untouched */
        int la = seq_a == cur ? lo_a : INT_MAX, ha = seq_a == cur ? hi_a : -1;
        int lb = seq_b == cur ? lo_b : INT_MAX, hb = seq_b == cur ? hi_b : -1;
        const __nv_bfloat16 *kb = kc + (size_t)cur * Tcap * KVD + (size_t)g * DH;
        const __nv_bfloat16 *vb = vc + (size_t)cur * Tcap * KVD + (size_t)g * DH;

        for (int j0 = kmin; j0 <= kmax; j0 += TILE_K) {
            __syncthreads(); /* everyone is done reading the previous tile */
            for (int c = tid; c < TILE_K * CPR; c += TILED_THREADS) {
                int r = c / CPR, col = (c - r * CPR) * 8, j = j0 + r;
                uint4 ku = make_uint4(0, 0, 0, 0), vu = ku;
                if (j <= kmax) {
                    ku = *(const uint4 *)(kb + (size_t)j * KVD + col);
                    vu = *(const uint4 *)(vb + (size_t)j * KVD + col);
                }
                *(uint4 *)(Ks + r * STR + col) = ku;
                *(uint4 *)(Vs + r * STR + col) = vu;
            }
            __syncthreads();

            /* S = Q·K^T for this warp's 16 rows × 64 keys */
            float sc[TILE_K / 8][4];
#pragma unroll
            for (int nt = 0; nt < TILE_K / 8; nt++) sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.0f;
#pragma unroll
            for (int ks = 0; ks < KSTEPS; ks++) {
#pragma unroll
                for (int nt = 0; nt < TILE_K / 8; nt++) {
                    const __nv_bfloat16 *kr = Ks + (nt * 8 + gr) * STR + ks * 16 + 2 * tg;
                    mma_bf16_16816(sc[nt], qf[ks], ld_u32(kr), ld_u32(kr + 8));
                }
            }

            /* mask, scale to log2 units, online softmax (rows a = gr, b = gr + 8; the four
             * lanes of a group share a row and agree on its max through two shuffles) */
            float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
            for (int nt = 0; nt < TILE_K / 8; nt++) {
                int key = j0 + nt * 8 + 2 * tg;
                sc[nt][0] = (key >= la && key <= ha) ? sc[nt][0] * qscale : -INFINITY;
                sc[nt][1] = (key + 1 >= la && key + 1 <= ha) ? sc[nt][1] * qscale : -INFINITY;
                sc[nt][2] = (key >= lb && key <= hb) ? sc[nt][2] * qscale : -INFINITY;
                sc[nt][3] = (key + 1 >= lb && key + 1 <= hb) ? sc[nt][3] * qscale : -INFINITY;
                mx_a = fmaxf(mx_a, fmaxf(sc[nt][0], sc[nt][1]));
                mx_b = fmaxf(mx_b, fmaxf(sc[nt][2], sc[nt][3]));
            }
            mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 1));
            mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 2));
            mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 1));
            mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 2));
            float mn_a = fmaxf(m_a, mx_a), mn_b = fmaxf(m_b, mx_b);
            float base_a = mn_a == -INFINITY ? 0.0f : mn_a, base_b = mn_b == -INFINITY ? 0.0f : mn_b;
            float corr_a = exp2f(m_a - base_a), corr_b = exp2f(m_b - base_b);
            m_a = mn_a;
            m_b = mn_b;
            float sum_a = 0.0f, sum_b = 0.0f;
#pragma unroll
            for (int nt = 0; nt < TILE_K / 8; nt++) {
                sc[nt][0] = exp2f(sc[nt][0] - base_a);
                sc[nt][1] = exp2f(sc[nt][1] - base_a);
                sc[nt][2] = exp2f(sc[nt][2] - base_b);
                sc[nt][3] = exp2f(sc[nt][3] - base_b);
                sum_a += sc[nt][0] + sc[nt][1];
                sum_b += sc[nt][2] + sc[nt][3];
            }
            l_a = l_a * corr_a + sum_a; /* per-lane partial; the group sums them at the end */
            l_b = l_b * corr_b + sum_b;
#pragma unroll
            for (int n = 0; n < NT; n++) {
                o[n][0] *= corr_a;
                o[n][1] *= corr_a;
                o[n][2] *= corr_b;
                o[n][3] *= corr_b;
            }

            /* O += P·V: the S accumulators of n-tiles 2kk, 2kk+1 are exactly the A fragment
             * of k-step kk; V fragments come transposed from shared memory. */
#pragma unroll
            for (int kk = 0; kk < TILE_K / 16; kk++) {
                uint32_t pa[4] = {pack_bf16(sc[2 * kk][0], sc[2 * kk][1]),
                                  pack_bf16(sc[2 * kk][2], sc[2 * kk][3]),
                                  pack_bf16(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                                  pack_bf16(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
                const __nv_bfloat16 *vrow =
                    Vs + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * STR + (lane >> 4) * 8;
#pragma unroll
                for (int dt = 0; dt < DH / 16; dt++) {
                    uint32_t vf[4];
                    ldmatrix_x4_trans(vf, vrow + dt * 16);
                    mma_bf16_16816(o[2 * dt], pa, vf[0], vf[1]);
                    mma_bf16_16816(o[2 * dt + 1], pa, vf[2], vf[3]);
                }
            }
        }
    }

    l_a += __shfl_xor_sync(0xffffffffu, l_a, 1);
    l_a += __shfl_xor_sync(0xffffffffu, l_a, 2);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, 1);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, 2);
    float ia = 1.0f / l_a, ib = 1.0f / l_b; /* l = 0 only for a bad slot: 0·inf = NaN, as meant */
    if (t0 + ra < T) {
        __nv_bfloat16 *za = z + ((size_t)(t0 + ra) * H + h) * DH + 2 * tg;
#pragma unroll
        for (int n = 0; n < NT; n++) *(uint32_t *)(za + n * 8) = pack_bf16(o[n][0] * ia, o[n][1] * ia);
    }
    if (t0 + rb < T) {
        __nv_bfloat16 *zb = z + ((size_t)(t0 + rb) * H + h) * DH + 2 * tg;
#pragma unroll
        for (int n = 0; n < NT; n++) *(uint32_t *)(zb + n * 8) = pack_bf16(o[n][2] * ib, o[n][3] * ib);
    }
}

/* dense[tile] = the tile's tokens form at most DENSE_MAX_RUNS runs of one sequence. */
static __global__ void attn_classify_tiles(unsigned char *dense, const int32_t *__restrict__ seq,
                                           int T) {
    int t = blockIdx.x * TILE_Q + threadIdx.x;
    int boundary = t < T && threadIdx.x > 0 && seq[t] != seq[t - 1];
    int runs = 1 + __syncthreads_count(boundary);
    if (threadIdx.x == 0) dense[blockIdx.x] = runs <= DENSE_MAX_RUNS;
}

/* ---- variant table and launcher --------------------------------------------------------- */

static const struct {
    hp_attn_variant v;
    const char *name;
} attn_variants[] = {
    {HP_ATTN_AUTO, "auto"},
    {HP_ATTN_SPLIT, "attn_decode_split"},
    {HP_ATTN_TILED, "attn_prefill_tiled"},
};

extern "C" const char *hp_cuda_attention_variant_name(hp_attn_variant v) {
    for (size_t i = 0; i < sizeof attn_variants / sizeof *attn_variants; i++)
        if (attn_variants[i].v == v) return attn_variants[i].name;
    return "unknown";
}

static int tiled_ok(int Dh, const void *kc, const void *vc) {
    return (Dh == 64 || Dh == 128) && aligned16(kc) && aligned16(vc);
}

extern "C" int hp_cuda_attention_supported(hp_attn_variant v, int Dh, const void *kc,
                                           const void *vc) {
    if (Dh <= 0 || Dh % 2 || Dh > SPLIT_MAX_DH) return 0;
    return v == HP_ATTN_TILED ? tiled_ok(Dh, kc, vc) : v == HP_ATTN_AUTO || v == HP_ATTN_SPLIT;
}

/* Which kernels a call runs: the split kernel (with nsplit chunks), the tiled one, or both. */
typedef struct attn_plan {
    int use_split, use_tiled, classify, gh, hchunks, nsplit, ntiles;
    size_t dense_bytes, part_floats;
} attn_plan;

static attn_plan make_plan(hp_attn_variant v, int T, int H, int KV, int Dh, int Tcap, int window,
                           int sm_count, int tiled_possible) {
    attn_plan p = {0, 0, 0, 1, 1, 1, 0, 0, 0};
    int G = H / KV;
    p.ntiles = (T + TILE_Q - 1) / TILE_Q;
    if (v == HP_ATTN_TILED) {
        p.use_tiled = 1;
    } else if (v == HP_ATTN_SPLIT || !tiled_possible || T <= AUTO_SPLIT_MAX_T) {
        p.use_split = 1;
    } else {
        p.use_split = p.use_tiled = p.classify = 1;
        p.dense_bytes = ((size_t)p.ntiles + 255) / 256 * 256; /* keeps what follows aligned */
    }
    if (p.use_split) {
        p.gh = split_heads(G, Dh);
        p.hchunks = (G + p.gh - 1) / p.gh;
        p.nsplit = split_count(T, KV, p.hchunks, Tcap, window, sm_count);
        if (p.nsplit > 1) p.part_floats = (size_t)T * H * p.nsplit * (Dh + 2);
    }
    return p;
}

extern "C" size_t hp_cuda_attention_workspace(hp_attn_variant v, int T, int H, int KV, int Dh,
                                              int Tcap, int window, int sm_count) {
    if (T <= 0 || H <= 0 || KV <= 0 || H % KV) return 0;
    attn_plan p = make_plan(v, T, H, KV, Dh, Tcap, window, sm_count, Dh == 64 || Dh == 128);
    return p.dense_bytes + p.part_floats * sizeof(float);
}

extern "C" cudaError_t hp_cuda_attention(hp_bf16 *z, const hp_bf16 *q, const hp_bf16 *kc,
                                         const hp_bf16 *vc, const int32_t *seq, const int32_t *pos,
                                         int T, int H, int KV, int Dh, int Tcap, int window,
                                         hp_attn_variant v, int sm_count, void *work,
                                         size_t work_bytes, unsigned *err, cudaStream_t st) {
    if (T < 0 || H <= 0 || KV <= 0 || H % KV || Tcap <= 0 || window < 0 ||
        !hp_cuda_attention_supported(v, Dh, kc, vc) || !aligned4(q) || !aligned4(z) ||
        !aligned4(kc) || !aligned4(vc))
        return cudaErrorInvalidValue;
    if (T == 0) return cudaSuccess;
    attn_plan p = make_plan(v, T, H, KV, Dh, Tcap, window, sm_count, tiled_ok(Dh, kc, vc));
    if (p.use_tiled && (size_t)H > 65535) return cudaErrorInvalidValue;
    if (p.dense_bytes + p.part_floats * sizeof(float) > work_bytes) return cudaErrorInvalidValue;
    unsigned char *dense = p.classify ? (unsigned char *)work : NULL;
    float *pacc = p.part_floats ? (float *)((char *)work + p.dense_bytes) : NULL;
    float *pml = pacc ? pacc + (size_t)T * H * p.nsplit * Dh : NULL;
    float qscale = LOG2E / sqrtf((float)Dh);
    __nv_bfloat16 *zb = (__nv_bfloat16 *)z;
    const __nv_bfloat16 *qb = (const __nv_bfloat16 *)q, *kb = (const __nv_bfloat16 *)kc,
                        *vb = (const __nv_bfloat16 *)vc;
    cudaError_t rc;

    if (p.classify) {
        attn_classify_tiles<<<p.ntiles, TILE_Q, 0, st>>>(dense, seq, T);
        if ((rc = cudaGetLastError()) != cudaSuccess) return rc;
    }
    if (p.use_tiled) {
        dim3 grid(p.ntiles, H);
        if (Dh == 64)
            attn_tiled_kernel<64><<<grid, TILED_THREADS, 0, st>>>(zb, qb, kb, vb, seq, pos, dense, T,
                                                                  H, KV, Tcap, window, qscale, err);
        else
            attn_tiled_kernel<128><<<grid, TILED_THREADS, 0, st>>>(zb, qb, kb, vb, seq, pos, dense, T,
                                                                   H, KV, Tcap, window, qscale, err);
        if ((rc = cudaGetLastError()) != cudaSuccess) return rc;
    }
    if (p.use_split) {
        int vec = Dh % 8 == 0 && aligned16(kc) && aligned16(vc);
        dim3 grid(T, KV * p.hchunks, p.nsplit);
        if (grid.y > 65535) return cudaErrorInvalidValue;
        attn_split_kernel<<<grid, SPLIT_THREADS, split_smem(p.gh, Dh), st>>>(
            zb, pacc, pml, qb, kb, vb, seq, pos, dense, H, KV, Dh, Tcap, window, p.gh, p.hchunks,
            p.nsplit, qscale, vec, err);
        if ((rc = cudaGetLastError()) != cudaSuccess) return rc;
        if (p.nsplit > 1) {
            attn_split_combine<<<dim3(T, H), 128, 0, st>>>(zb, pacc, pml, dense, H, Dh, p.nsplit);
            if ((rc = cudaGetLastError()) != cudaSuccess) return rc;
        }
    }
    return cudaSuccess;
}
