/* bench_cuda.c: GPU benchmarks of the CUDA backend, each against a ceiling measured in the same
 * run (bench/GPU_BENCH.md says what and why):
 *   ceilings  device-to-device copy (GB/s, bytes read + written), host-to-device copy from
 *             pageable memory, cuBLAS bf16 GEMM 8192³ and fp32 SGEMM (TFLOP/s); CUDA events,
 *             warm-up, median of repeats, inputs rotated beyond L2
 *   ops       every forward kernel through the hp_backend interface at Mistral-7B shapes:
 *             achieved GB/s (memory-bound ops) or TFLOP/s (products, prefill attention) and
 *             the ratio to the ceiling; host clock around back-to-back launches + sync()
 *             (the backend's stream is private), buffers rotated beyond L2
 *   prefill   end to end, Mistral-7B-Instruct-v0.2 shape, random bf16 weights
 *             (hp_model_random), tokens/s over a batch × prompt grid; model FLOPs utilisation
 *   decode    batch-1 greedy steps: tokens/s against the floor (weight + KV bytes / copy GB/s)
 *   llava     LLaVA-NeXT at the llava-v1.6-mistral-7b shape, random weights (hp_llava_random):
 *             the CLIP ViT-L/14-336 tower alone over 1, 5, 10 tiles (tiles/s, MFU), then one
 *             672x672 anyres image end to end: image features (tower over 5 tiles, projector,
 *             packing) and the decoder prefill over the prompt with the image rows injected,
 *             logits of the last token; vision and decoder times reported apart
 *   somp      hp_somp_cuda_batch_qr, both QR variants, on N = 2048 samples × nheads heads, k = 50,
 *             D = 4096, with 256-atom and 32000-atom dictionaries, against its memory-traffic
 *             floor
 * Prints a table per section and one JSON line per measurement ({"bench":"cuda",...}). Without
 * a CUDA device (or CUDA in the build) it prints "skipped: no CUDA driver / no GPU" and exits 0.
 * `--device cpu` runs the llava section alone on the CPU backend (no ceilings, so no MFU), and
 * `--tiny` shrinks it to a few-layer CLIP and decoder: the same code path in seconds, for CI
 * (tests/test_bench_llava_smoke.sh) and for machines without a GPU; those lines say "bench":"cpu".
 *
 *   build/bench/bench_cuda [--only ceil,ops,prefill,decode,llava,somp] [--batches 1,8,64]
 *                          [--prompts 64,512,2048] [--somp-heads 1024] [--somp-vocab 256,32000]
 *                          [--decode-prompt 512] [--decode-steps 64] [--llava-tiles 1,5,10]
 *                          [--device cuda|cpu] [--tiny] [--seed S] */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "llava.h"
#include "metrics.h"
#include "model.h"
#include "ops_cpu.h" /* HP_GLU_SILU */
#include "nvtx.h"

#ifdef HP_HAVE_CUDA
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "ops_cuda.h"
#include "somp_cuda.h"
#endif

#define MAXLIST 16

/* ---- checks: every CUDA / cuBLAS / backend call records statement, file and line, then exits - */

static void die(const char *what, const char *file, int line, const char *msg) {
    fprintf(stderr, "bench_cuda: %s:%d: %s: %s\n", file, line, what, msg);
    exit(1);
}
/* A backend call (0 on success) whose error message is in e. */
#define HP(call)                                                                                  \
    do {                                                                                          \
        if ((call) != 0) die(#call, __FILE__, __LINE__, e.msg[0] ? e.msg : "failed");             \
    } while (0)

static hp_err e;

/* ---- small utilities ------------------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Median of n samples (numpy's linear percentile, host/eval/metrics.c). */
static double median(double *v, int n) {
    double m = 0;
    hp_percentile(v, n, 50.0, &m);
    return m;
}

static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* x[i] = amp·u(seed, i), u uniform in [-1, 1): parallel, the same for any thread count. */
static void fill_random(float *x, size_t n, uint64_t seed, float amp) {
    uint64_t s = mix(seed);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        uint64_t z = mix(s + i * 0x9e3779b97f4a7c15ull);
        x[i] = amp * (float)((double)(z >> 40) * (1.0 / 8388608.0) - 1.0);
    }
}

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "bench_cuda: out of host memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

static int parse_list(const char *s, int *out) {
    int n = 0;
    while (*s && n < MAXLIST) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v <= 0 || v > 1 << 20) return -1;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

/* ---- measured ceilings (set by the CUDA section) -------------------------------------------- */

typedef struct ceilings {
    double copy_gbs;   /* device-to-device, bytes read + written */
    double h2d_gbs;    /* host (pageable) to device */
    double bf16_tflops;
    double f32_tflops; /* SGEMM without TF32 (the SOMP correlations) */
} ceilings;

static ceilings ceil_; /* all 0 on the CPU backend: no ratios there */

/* ---- Mistral-7B-Instruct-v0.2: the shape of the ops, prefill, decode and llava sections ------- */

enum { MD = 4096, MH = 32, MKV = 8, MDH = 128, MF = 14336, MV = 32000, ML = 32 };

static hp_config mistral_config(void) {
    hp_config c;
    memset(&c, 0, sizeof c);
    c.arch = HP_ARCH_MISTRAL;
    snprintf(c.arch_name, sizeof c.arch_name, "MistralForCausalLM");
    c.D = MD;
    c.L = ML;
    c.H = MH;
    c.KV = MKV;
    c.Dh = MDH;
    c.F = MF;
    c.V = MV;
    c.max_pos = 32768;
    c.rope_theta = 1e6f; /* v0.2: rope_theta 1e6, no sliding window */
    c.rms_eps = 1e-5f;
    c.bos_id = 1;
    c.eos_id = 2;
    c.n_eos = 1;
    c.eos_ids[0] = 2;
    return c;
}

/* FLOPs of a prefill of B prompts of P tokens: 2 per weight per token (embedding lookup
 * excluded), causal attention 2·Dh·H·L·B·P(P+1), and the lm_head for the B last rows. */
static double prefill_flops(const hp_config *c, int B, int P) {
    double Q = (double)c->H * c->Dh, KVD = (double)c->KV * c->Dh;
    double per_tok = 2.0 * c->L * (2.0 * c->D * Q + 2.0 * c->D * KVD + 3.0 * c->D * c->F);
    return per_tok * B * (double)P + 2.0 * c->Dh * c->H * c->L * B * (double)P * (P + 1) +
           2.0 * c->V * c->D * B * 2 /* hi + lo products */;
}

typedef struct e2e_opts {
    int nb, np, batches[MAXLIST], prompts[MAXLIST];
    int decode_prompt, decode_steps;
    int do_prefill, do_decode;
} e2e_opts;

/* ================================ the CUDA sections ============================================ */
#ifdef HP_HAVE_CUDA

#define CK(call)                                                                                  \
    do {                                                                                          \
        cudaError_t rc_ = (call);                                                                 \
        if (rc_ != cudaSuccess) die(#call, __FILE__, __LINE__, cudaGetErrorString(rc_));          \
    } while (0)
#define CB(call)                                                                                  \
    do {                                                                                          \
        cublasStatus_t rc_ = (call);                                                              \
        if (rc_ != CUBLAS_STATUS_SUCCESS) die(#call, __FILE__, __LINE__, cublasGetStatusString(rc_)); \
    } while (0)
static int l2_bytes, sm_count;
static char dev_name[256];

/* ---- measured ceilings ----------------------------------------------------------------------- */

/* Median milliseconds of `reps` timed calls of fn(i) on stream st, after `warm` untimed ones. */
typedef void (*timed_fn)(void *ctx, int i);
static double time_events(cudaStream_t st, timed_fn fn, void *ctx, int warm, int reps) {
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    for (int i = 0; i < warm; i++) fn(ctx, i);
    double *ms = xmalloc(sizeof(double) * reps);
    for (int i = 0; i < reps; i++) {
        float t;
        CK(cudaEventRecord(a, st));
        fn(ctx, warm + i);
        CK(cudaEventRecord(b, st));
        CK(cudaEventSynchronize(b));
        CK(cudaEventElapsedTime(&t, a, b));
        ms[i] = t;
    }
    double m = median(ms, reps);
    free(ms);
    CK(cudaEventDestroy(a));
    CK(cudaEventDestroy(b));
    return m;
}

typedef struct copy_ctx {
    cudaStream_t st;
    void *src[2], *dst[2];
    const void *host;
    size_t bytes;
} copy_ctx;

static void do_d2d(void *p, int i) {
    copy_ctx *c = p;
    CK(cudaMemcpyAsync(c->dst[i & 1], c->src[i & 1], c->bytes, cudaMemcpyDeviceToDevice, c->st));
}

static void do_h2d(void *p, int i) {
    copy_ctx *c = p;
    CK(cudaMemcpyAsync(c->dst[i & 1], c->host, c->bytes, cudaMemcpyHostToDevice, c->st));
}

typedef struct gemm_ctx {
    cublasHandle_t h;
    void *A[2], *B[2], *C[2];
    int n, bf16;
} gemm_ctx;

static void do_gemm(void *p, int i) {
    gemm_ctx *g = p;
    const float one = 1.0f, zero = 0.0f;
    cudaDataType_t t = g->bf16 ? CUDA_R_16BF : CUDA_R_32F;
    cublasComputeType_t ct = CUBLAS_COMPUTE_32F; /* fp32 inputs: plain FFMA, no TF32 (as somp.cu) */
    CB(cublasGemmEx(g->h, CUBLAS_OP_T, CUBLAS_OP_N, g->n, g->n, g->n, &one, g->A[i & 1], t, g->n,
                    g->B[i & 1], t, g->n, &zero, g->C[i & 1], t, g->n, ct, CUBLAS_GEMM_DEFAULT));
}

static void json_ceiling(const char *name, const char *unit, double v) {
    printf("{\"bench\":\"cuda\",\"kind\":\"ceiling\",\"name\":\"%s\",\"%s\":%.4g,\"device\":\"%s\"}\n",
           name, unit, v, dev_name);
}

static void measure_ceilings(void) {
    HP_NVTX_PUSH("ceilings");
    cudaStream_t st;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    /* copies: 2 x 1 GiB pairs, far beyond L2 */
    copy_ctx c = {.st = st, .bytes = (size_t)1 << 30};
    for (int i = 0; i < 2; i++) {
        CK(cudaMalloc(&c.src[i], c.bytes));
        CK(cudaMalloc(&c.dst[i], c.bytes));
        CK(cudaMemsetAsync(c.src[i], 0x3c + i, c.bytes, st)); /* non-zero bytes */
    }
    double ms = time_events(st, do_d2d, &c, 3, 20);
    ceil_.copy_gbs = 2.0 * c.bytes / (ms * 1e-3) / 1e9;
    char *host = xmalloc(c.bytes);
    fill_random((float *)host, c.bytes / 4, 7, 1.0f);
    c.host = host;
    ms = time_events(st, do_h2d, &c, 1, 5);
    ceil_.h2d_gbs = c.bytes / (ms * 1e-3) / 1e9;
    free(host);
    for (int i = 0; i < 2; i++) {
        CK(cudaFree(c.src[i]));
        CK(cudaFree(c.dst[i]));
    }

    /* GEMMs: two input sets (each operand 128 MiB bf16 / 256 MiB fp32: beyond L2 anyway) */
    gemm_ctx g = {.n = 8192};
    CB(cublasCreate(&g.h));
    CB(cublasSetStream(g.h, st));
    size_t nn = (size_t)g.n * g.n;
    float *tmp = xmalloc(nn * sizeof(float));
    for (int pass = 0; pass < 2; pass++) {
        g.bf16 = pass == 0;
        size_t es = g.bf16 ? 2 : 4;
        for (int i = 0; i < 2; i++) {
            CK(cudaMalloc(&g.A[i], nn * es));
            CK(cudaMalloc(&g.B[i], nn * es));
            CK(cudaMalloc(&g.C[i], nn * es));
            void *stage;
            CK(cudaMalloc(&stage, nn * 4));
            for (int w = 0; w < 2; w++) {
                fill_random(tmp, nn, 100 + 4 * i + 2 * w + pass, 1.0f);
                CK(cudaMemcpy(stage, tmp, nn * 4, cudaMemcpyHostToDevice));
                void *dst = w ? g.B[i] : g.A[i];
                if (g.bf16)
                    CK(hp_cuda_f32_to_bf16(dst, stage, nn, st));
                else
                    CK(cudaMemcpyAsync(dst, stage, nn * 4, cudaMemcpyDeviceToDevice, st));
            }
            CK(cudaStreamSynchronize(st));
            CK(cudaFree(stage));
        }
        ms = time_events(st, do_gemm, &g, 3, g.bf16 ? 20 : 6);
        double tf = 2.0 * g.n * (double)g.n * g.n / (ms * 1e-3) / 1e12;
        if (g.bf16)
            ceil_.bf16_tflops = tf;
        else
            ceil_.f32_tflops = tf;
        for (int i = 0; i < 2; i++) {
            CK(cudaFree(g.A[i]));
            CK(cudaFree(g.B[i]));
            CK(cudaFree(g.C[i]));
        }
    }
    free(tmp);
    CB(cublasDestroy(g.h));
    CK(cudaStreamDestroy(st));
    printf("\n== ceilings (%s, %d SMs, L2 %.0f MiB)\n", dev_name, sm_count, l2_bytes / 1048576.0);
    printf("  device-to-device copy   %8.0f GB/s (read + write)\n", ceil_.copy_gbs);
    printf("  host-to-device pageable %8.1f GB/s\n", ceil_.h2d_gbs);
    printf("  bf16 GEMM 8192^3        %8.1f TFLOP/s\n", ceil_.bf16_tflops);
    printf("  fp32 SGEMM 8192^3       %8.1f TFLOP/s (no TF32)\n", ceil_.f32_tflops);
    json_ceiling("d2d_copy", "gbps", ceil_.copy_gbs);
    json_ceiling("h2d_pageable", "gbps", ceil_.h2d_gbs);
    json_ceiling("gemm_bf16_8192", "tflops", ceil_.bf16_tflops);
    json_ceiling("sgemm_f32_8192", "tflops", ceil_.f32_tflops);
    HP_NVTX_POP();
}

/* ---- forward kernels through hp_backend ------------------------------------------------------ */

enum { OP_EMBED, OP_RMSNORM, OP_MATMUL, OP_ROPE, OP_KV_STORE, OP_ATTN, OP_SWIGLU, OP_ADD,
       OP_HEAD_SCALE, OP_READOUT, OP_MATMUL_F32 };
/* How a buffer is filled: random values, or the int32 contents the op needs. */
enum { F_RAND, F_IDS, F_SEQ_PACKED, F_POS_PACKED, F_SEQ_DECODE, F_POS_DECODE, F_ONES, F_ZERO };

#define MAXSETS 8
#define MAXSLOT 6

typedef struct op {
    const char *name;
    char shape[80];
    int kind;
    int T, N, K, B, P, H, KV, Tcap; /* shapes (meaning per kind) */
    hp_attn_variant var;
    int nslot;
    size_t n[MAXSLOT];
    hp_mem mem[MAXSLOT];
    int fill[MAXSLOT];
    int shared[MAXSLOT]; /* one buffer for all sets (weights, tables, index arrays) */
    void *buf[MAXSETS][MAXSLOT];
    int nsets;
    double bytes, flops; /* per call */
    int compute_bound;
} op;

static void slot(op *o, size_t n, hp_mem m, int fill, int shared) {
    o->n[o->nslot] = n;
    o->mem[o->nslot] = m;
    o->fill[o->nslot] = fill;
    o->shared[o->nslot] = shared;
    o->nslot++;
}

static void op_alloc(hp_backend *be, op *o, uint64_t seed) {
    double per_set = 0;
    for (int s = 0; s < o->nslot; s++)
        if (!o->shared[s]) per_set += (double)o->n[s] * be->elem_size(be, o->mem[s]);
    o->nsets = per_set > 0 ? (int)ceil(2.0 * l2_bytes / per_set) : 1; /* rotate beyond L2 */
    if (o->nsets < 1) o->nsets = 1;
    if (o->nsets > MAXSETS) o->nsets = MAXSETS;
    for (int s = 0; s < o->nslot; s++) {
        size_t n = o->n[s];
        float *hf = NULL;
        int32_t *hi = NULL;
        if (o->mem[s] == HP_MEM_I32) {
            hi = xmalloc(sizeof(int32_t) * n);
            for (size_t i = 0; i < n; i++) {
                int per_seq = o->P > 0 ? o->P : 1;
                switch (o->fill[s]) {
                case F_IDS: hi[i] = (int32_t)(mix(seed + i) % MV); break;
                case F_SEQ_PACKED: hi[i] = (int32_t)(i / per_seq); break;
                case F_POS_PACKED: hi[i] = (int32_t)(i % per_seq); break;
                case F_SEQ_DECODE: hi[i] = (int32_t)i; break;
                case F_POS_DECODE: hi[i] = o->Tcap - 1; break;
                default: hi[i] = 0;
                }
            }
        } else {
            hf = xmalloc(sizeof(float) * n);
            if (o->fill[s] == F_ONES)
                for (size_t i = 0; i < n; i++) hf[i] = 1.0f;
            else if (o->fill[s] == F_ZERO)
                memset(hf, 0, sizeof(float) * n);
            else
                fill_random(hf, n, seed + 17 * s, 1.0f);
        }
        for (int k = 0; k < o->nsets; k++) {
            if (o->shared[s] && k > 0) {
                o->buf[k][s] = o->buf[0][s];
                continue;
            }
            void *p = be->alloc(be, n, o->mem[s], &e);
            if (!p) die("be->alloc", __FILE__, __LINE__, e.msg);
            HP(be->upload(be, p, hi ? (const void *)hi : (const void *)hf, n, o->mem[s], &e));
            o->buf[k][s] = p;
        }
        free(hf);
        free(hi);
    }
    HP(be->sync(be, &e));
}

static void op_free(hp_backend *be, op *o) {
    for (int k = 0; k < o->nsets; k++)
        for (int s = 0; s < o->nslot; s++)
            if (!(o->shared[s] && k > 0)) be->free(be, o->buf[k][s]);
}

static int op_launch(hp_backend *be, op *o, int k) {
    void **b = o->buf[k % o->nsets];
    switch (o->kind) {
    case OP_EMBED: return be->embed(be, b[0], b[1], b[2], o->T, MD, MV);
    case OP_RMSNORM: return be->rmsnorm(be, b[0], b[1], b[2], o->T, MD, 1e-5f);
    case OP_MATMUL: return be->matmul(be, b[0], b[1], b[2], o->T, o->N, o->K);
    case OP_ROPE: return be->rope(be, b[0], b[1], b[2], o->T, o->H, MDH);
    case OP_KV_STORE:
        return be->kv_store(be, b[0], b[1], b[2], b[3], b[4], b[5], o->T, MKV * MDH, o->Tcap);
    case OP_ATTN:
        return be->attention(be, b[0], b[1], b[2], b[3], b[4], b[5], o->T, MH, MKV, MDH, o->Tcap, 0);
    case OP_SWIGLU: return be->glu(be, b[0], b[0], b[1], (size_t)o->T * MF, HP_GLU_SILU);
    case OP_ADD: return be->add(be, b[0], b[1], (size_t)o->T * MD);
    case OP_HEAD_SCALE: return be->head_scale(be, b[0], b[1], o->T, MH, MDH);
    case OP_READOUT:
        return be->head_readout(be, b[0], b[1], b[2], b[3], b[4], o->T, o->B, MH, MDH, MD);
    case OP_MATMUL_F32: return be->matmul_f32(be, b[0], b[1], b[2], o->T, o->N, o->K);
    }
    return -1;
}

typedef struct op_result {
    double us, rate, ratio;
} op_result;

/* Median time per call: samples of back-to-back launches (>= ~3 ms each) closed by sync(). */
static op_result op_time(hp_backend *be, op *o) {
    if (o->kind == OP_ATTN) hp_backend_cuda_set_attention(be, o->var);
    for (int i = 0; i < 3; i++) HP(op_launch(be, o, i));
    HP(be->sync(be, &e));
    double t0 = now_s();
    int probe = 5;
    for (int i = 0; i < probe; i++) HP(op_launch(be, o, i));
    HP(be->sync(be, &e));
    double per = (now_s() - t0) / probe;
    int inner = per > 0 ? (int)(3e-3 / per) : 100;
    if (inner < 3) inner = 3;
    if (inner > 2000) inner = 2000;
    enum { SAMPLES = 9 };
    double v[SAMPLES];
    for (int s = 0; s < SAMPLES; s++) {
        t0 = now_s();
        for (int i = 0; i < inner; i++) HP(op_launch(be, o, i));
        HP(be->sync(be, &e));
        v[s] = (now_s() - t0) / inner;
    }
    double t = median(v, SAMPLES);
    op_result r = {t * 1e6, 0, 0};
    if (o->compute_bound) {
        r.rate = o->flops / t / 1e12;
        r.ratio = r.rate / ceil_.bf16_tflops;
    } else {
        r.rate = o->bytes / t / 1e9;
        r.ratio = r.rate / ceil_.copy_gbs;
    }
    if (o->kind == OP_ATTN) hp_backend_cuda_set_attention(be, HP_ATTN_AUTO);
    return r;
}

static void run_op(hp_backend *be, op *o, uint64_t seed) {
    op_alloc(be, o, seed);
    op_result r = op_time(be, o);
    op_free(be, o);
    printf("  %-24s %-34s %9.1f us %9.1f %-7s %5.1f%%\n", o->name, o->shape, r.us, r.rate,
           o->compute_bound ? "TFLOP/s" : "GB/s", 100 * r.ratio);
    printf("{\"bench\":\"cuda\",\"kind\":\"op\",\"name\":\"%s\",\"shape\":\"%s\",\"us\":%.3f,"
           "\"%s\":%.4g,\"ratio\":%.4f,\"nsets\":%d}\n",
           o->name, o->shape, r.us, o->compute_bound ? "tflops" : "gbps", r.rate, r.ratio, o->nsets);
}

static op op_new(const char *name, int kind) {
    op o;
    memset(&o, 0, sizeof o);
    o.name = name;
    o.kind = kind;
    return o;
}

static void bench_ops(hp_backend *be, uint64_t seed) {
    HP_NVTX_PUSH("ops");
    printf("\n== forward kernels through hp_backend (Mistral-7B shapes; ratio to the ceiling)\n");
    const int T = 4096; /* tokens in a prefill chunk */
    const double A = 2; /* bytes of a bf16 activation / weight */
    op o;

    o = op_new("embed", OP_EMBED);
    o.T = T;
    snprintf(o.shape, sizeof o.shape, "T=%d D=%d V=%d", T, MD, MV);
    slot(&o, (size_t)T * MD, HP_MEM_ACT, F_ZERO, 0);
    slot(&o, (size_t)MV * MD, HP_MEM_WEIGHT, F_RAND, 1);
    slot(&o, T, HP_MEM_I32, F_IDS, 1);
    o.bytes = 2.0 * T * MD * A + 4.0 * T;
    run_op(be, &o, seed);

    o = op_new("rmsnorm", OP_RMSNORM);
    o.T = T;
    snprintf(o.shape, sizeof o.shape, "T=%d D=%d", T, MD);
    slot(&o, (size_t)T * MD, HP_MEM_ACT, F_ZERO, 0);
    slot(&o, (size_t)T * MD, HP_MEM_ACT, F_RAND, 0);
    slot(&o, MD, HP_MEM_WEIGHT, F_RAND, 1);
    o.bytes = 2.0 * T * MD * A + MD * A;
    run_op(be, &o, seed);

    struct { const char *name; int T, N, K; } mm[] = {
        {"matmul q/o", T, MD, MD},        {"matmul k/v", T, MKV * MDH, MD},
        {"matmul gate/up", T, MF, MD},    {"matmul down", T, MD, MF},
        {"matmul gate T=1", 1, MF, MD},   {"matmul down T=1", 1, MD, MF},
    };
    for (size_t i = 0; i < sizeof mm / sizeof *mm; i++) {
        o = op_new(mm[i].name, OP_MATMUL);
        o.T = mm[i].T;
        o.N = mm[i].N;
        o.K = mm[i].K;
        snprintf(o.shape, sizeof o.shape, "T=%d N=%d K=%d", o.T, o.N, o.K);
        slot(&o, (size_t)o.T * o.N, HP_MEM_ACT, F_ZERO, 0);
        slot(&o, (size_t)o.T * o.K, HP_MEM_ACT, F_RAND, 0);
        slot(&o, (size_t)o.N * o.K, HP_MEM_WEIGHT, F_RAND, o.T > 64); /* T=1: rotate weights */
        o.flops = 2.0 * o.T * o.N * o.K;
        o.bytes = A * ((double)o.T * o.N + (double)o.T * o.K + (double)o.N * o.K);
        o.compute_bound = o.T > 64;
        run_op(be, &o, seed);
    }

    o = op_new("rope q", OP_ROPE);
    o.T = T;
    o.H = MH;
    o.P = T;
    snprintf(o.shape, sizeof o.shape, "T=%d heads=%d Dh=%d", T, MH, MDH);
    slot(&o, (size_t)T * MH * MDH, HP_MEM_ACT, F_RAND, 0);
    slot(&o, T, HP_MEM_I32, F_POS_PACKED, 1);
    slot(&o, MDH / 2, HP_MEM_F32, F_RAND, 1); /* inverse frequencies: any values time the same */
    o.bytes = 2.0 * T * MH * MDH * A + 4.0 * T + 2.0 * MDH;
    run_op(be, &o, seed);

    o = op_new("kv_store", OP_KV_STORE);
    o.T = T;
    o.P = T;
    o.Tcap = T;
    snprintf(o.shape, sizeof o.shape, "T=%d KV*Dh=%d", T, MKV * MDH);
    slot(&o, (size_t)T * MKV * MDH, HP_MEM_ACT, F_ZERO, 0);
    slot(&o, (size_t)T * MKV * MDH, HP_MEM_ACT, F_ZERO, 0);
    slot(&o, (size_t)T * MKV * MDH, HP_MEM_ACT, F_RAND, 0);
    slot(&o, (size_t)T * MKV * MDH, HP_MEM_ACT, F_RAND, 0);
    slot(&o, T, HP_MEM_I32, F_SEQ_PACKED, 1);
    slot(&o, T, HP_MEM_I32, F_POS_PACKED, 1);
    o.bytes = 4.0 * T * MKV * MDH * A + 8.0 * T;
    run_op(be, &o, seed);

    /* prefill attention: B sequences of P tokens, packed; causal FLOPs 2·Dh·H·B·P(P+1) */
    struct { int B, P; hp_attn_variant v; } pa[] = {
        {1, 2048, HP_ATTN_AUTO}, {1, 2048, HP_ATTN_TILED}, {1, 2048, HP_ATTN_SPLIT},
        {8, 512, HP_ATTN_AUTO},  {8, 512, HP_ATTN_TILED},
    };
    for (size_t i = 0; i < sizeof pa / sizeof *pa; i++) {
        char *nm = xmalloc(64);
        snprintf(nm, 64, "attn prefill %s", hp_cuda_attention_variant_name(pa[i].v));
        o = op_new(nm, OP_ATTN);
        o.var = pa[i].v;
        o.B = pa[i].B;
        o.P = pa[i].P;
        o.T = o.B * o.P;
        o.Tcap = o.P;
        snprintf(o.shape, sizeof o.shape, "B=%d P=%d H=%d/%d Dh=%d", o.B, o.P, MH, MKV, MDH);
        size_t cache = (size_t)o.B * o.Tcap * MKV * MDH;
        slot(&o, (size_t)o.T * MH * MDH, HP_MEM_ACT, F_ZERO, 0);
        slot(&o, (size_t)o.T * MH * MDH, HP_MEM_ACT, F_RAND, 0);
        slot(&o, cache, HP_MEM_ACT, F_RAND, 0);
        slot(&o, cache, HP_MEM_ACT, F_RAND, 0);
        slot(&o, o.T, HP_MEM_I32, F_SEQ_PACKED, 1);
        slot(&o, o.T, HP_MEM_I32, F_POS_PACKED, 1);
        o.flops = 2.0 * MDH * MH * o.B * (double)o.P * (o.P + 1);
        o.compute_bound = 1;
        run_op(be, &o, seed);
        free(nm);
    }
    /* decode attention: one token per sequence at the end of a ctx-long cache; reads K and V */
    struct { int B, ctx; hp_attn_variant v; } da[] = {
        {1, 4096, HP_ATTN_AUTO}, {64, 2048, HP_ATTN_AUTO}, {64, 2048, HP_ATTN_SPLIT},
    };
    for (size_t i = 0; i < sizeof da / sizeof *da; i++) {
        char *nm = xmalloc(64);
        snprintf(nm, 64, "attn decode %s", hp_cuda_attention_variant_name(da[i].v));
        o = op_new(nm, OP_ATTN);
        o.var = da[i].v;
        o.B = da[i].B;
        o.T = o.B;
        o.Tcap = da[i].ctx;
        snprintf(o.shape, sizeof o.shape, "B=%d ctx=%d H=%d/%d Dh=%d", o.B, o.Tcap, MH, MKV, MDH);
        size_t cache = (size_t)o.B * o.Tcap * MKV * MDH;
        slot(&o, (size_t)o.T * MH * MDH, HP_MEM_ACT, F_ZERO, 0);
        slot(&o, (size_t)o.T * MH * MDH, HP_MEM_ACT, F_RAND, 0);
        slot(&o, cache, HP_MEM_ACT, F_RAND, 0);
        slot(&o, cache, HP_MEM_ACT, F_RAND, 0);
        slot(&o, o.T, HP_MEM_I32, F_SEQ_DECODE, 1);
        slot(&o, o.T, HP_MEM_I32, F_POS_DECODE, 1);
        o.bytes = 2.0 * cache * A + 2.0 * o.T * MH * MDH * A;
        run_op(be, &o, seed);
        free(nm);
    }

    o = op_new("swiglu", OP_SWIGLU);
    o.T = T;
    snprintf(o.shape, sizeof o.shape, "T=%d F=%d", T, MF);
    slot(&o, (size_t)T * MF, HP_MEM_ACT, F_RAND, 0);
    slot(&o, (size_t)T * MF, HP_MEM_ACT, F_RAND, 0);
    o.bytes = 3.0 * T * MF * A;
    run_op(be, &o, seed);

    o = op_new("add (residual)", OP_ADD);
    o.T = T;
    snprintf(o.shape, sizeof o.shape, "T=%d D=%d", T, MD);
    slot(&o, (size_t)T * MD, HP_MEM_ACT, F_RAND, 0);
    slot(&o, (size_t)T * MD, HP_MEM_ACT, F_RAND, 0);
    o.bytes = 3.0 * T * MD * A;
    run_op(be, &o, seed);

    o = op_new("head_scale", OP_HEAD_SCALE);
    o.T = T;
    snprintf(o.shape, sizeof o.shape, "T=%d H=%d Dh=%d", T, MH, MDH);
    slot(&o, (size_t)T * MH * MDH, HP_MEM_ACT, F_RAND, 0);
    slot(&o, MH, HP_MEM_F32, F_RAND, 1);
    o.bytes = 2.0 * T * MH * MDH * A;
    run_op(be, &o, seed);

    /* head readout: B sequences of T/B tokens, per-head products with W_O (hi + lo halves) */
    o = op_new("head_readout", OP_READOUT);
    o.T = 2048;
    o.B = 16;
    o.P = o.T / o.B;
    snprintf(o.shape, sizeof o.shape, "T=%d B=%d H=%d Dh=%d D=%d", o.T, o.B, MH, MDH, MD);
    slot(&o, (size_t)o.B * MH * MD, HP_MEM_F32, F_ZERO, 0);
    slot(&o, (size_t)o.T * MH * MDH, HP_MEM_ACT, F_RAND, 0);
    slot(&o, o.T, HP_MEM_F32, F_ONES, 1);
    slot(&o, o.T, HP_MEM_I32, F_SEQ_PACKED, 1);
    slot(&o, (size_t)MD * MH * MDH, HP_MEM_WEIGHT, F_RAND, 1);
    o.bytes = (double)o.T * MH * MDH * A + (double)MD * MH * MDH * A + 2.0 * o.B * MH * MD * 4;
    run_op(be, &o, seed);

    o = op_new("matmul_f32 lm_head", OP_MATMUL_F32);
    o.T = 64;
    o.N = MV;
    o.K = MD;
    snprintf(o.shape, sizeof o.shape, "rows=%d V=%d D=%d", o.T, MV, MD);
    slot(&o, (size_t)o.T * MV, HP_MEM_F32, F_ZERO, 0);
    slot(&o, (size_t)o.T * MD, HP_MEM_F32, F_RAND, 0);
    slot(&o, (size_t)MV * MD, HP_MEM_WEIGHT, F_RAND, 1);
    o.bytes = 2.0 * MV * MD * A + (double)o.T * MV * 4 * 2 + (double)o.T * MD * 4;
    run_op(be, &o, seed);
    HP_NVTX_POP();
}

static void bench_model(hp_backend *be, const e2e_opts *eo, uint64_t seed) {
    hp_config cfg = mistral_config();
    HP_NVTX_PUSH("load");
    double t0 = now_s();
    hp_model *m = hp_model_random(&cfg, be, seed, &e);
    if (!m) die("hp_model_random", __FILE__, __LINE__, e.msg);
    double t_load = now_s() - t0;
    HP_NVTX_POP();
    double wbytes = (double)m->n_params * be->elem_size(be, HP_MEM_WEIGHT);
    printf("\n== random Mistral-7B-Instruct-v0.2 shape: %.2fB parameters, %.1f GB of bf16 weights, "
           "made and uploaded in %.1f s\n", m->n_params / 1e9, wbytes / 1e9, t_load);
    int maxB = 1, maxP = eo->decode_prompt + eo->decode_steps;
    for (int i = 0; i < eo->nb; i++) maxB = eo->batches[i] > maxB ? eo->batches[i] : maxB;
    for (int i = 0; i < eo->np; i++) maxP = eo->prompts[i] > maxP ? eo->prompts[i] : maxP;
    int Tmax = 8192;
    hp_runtime *rt = hp_runtime_create(m, maxB, maxP, Tmax, 0, &e);
    if (!rt) die("hp_runtime_create", __FILE__, __LINE__, e.msg);
    size_t maxT = (size_t)maxB * maxP;
    int32_t *ids = xmalloc(sizeof(int32_t) * maxT), *seq = xmalloc(sizeof(int32_t) * maxT);
    int32_t *pos = xmalloc(sizeof(int32_t) * maxT), *rows = xmalloc(sizeof(int32_t) * maxB);
    float *logits = xmalloc(sizeof(float) * (size_t)maxB * cfg.V);
    for (size_t i = 0; i < maxT; i++) ids[i] = (int32_t)(mix(seed + 1000 + i) % (uint64_t)cfg.V);

    if (eo->do_prefill) {
        printf("\n== prefill, end to end (hp_forward, logits for each prompt's last token; MFU vs the "
               "bf16 GEMM ceiling)\n");
        printf("  %5s %6s %10s %12s %9s %6s\n", "batch", "prompt", "ms", "tokens/s", "TFLOP/s", "MFU");
        for (int bi = 0; bi < eo->nb; bi++)
            for (int pi = 0; pi < eo->np; pi++) {
                int B = eo->batches[bi], P = eo->prompts[pi], T = B * P;
                for (int t = 0; t < T; t++) {
                    seq[t] = t / P;
                    pos[t] = t % P;
                }
                for (int b = 0; b < B; b++) rows[b] = b * P + P - 1;
                hp_fwd f = {.T = T, .ids = ids, .seq = seq, .pos = pos, .n_logits = B,
                            .logit_rows = rows, .logits_out = logits};
                HP_NVTX_PUSH("forward");
                HP(hp_forward(rt, &f, &e)); /* warm-up (and workspace growth) */
                double ts[7];
                int reps = 0;
                double spent = 0;
                while (reps < 7 && (reps < 3 || spent < 2.0)) {
                    t0 = now_s();
                    HP(hp_forward(rt, &f, &e));
                    ts[reps] = now_s() - t0;
                    spent += ts[reps++];
                }
                HP_NVTX_POP();
                double t = median(ts, reps), tf = prefill_flops(&cfg, B, P) / t / 1e12;
                printf("  %5d %6d %10.2f %12.0f %9.1f %5.1f%%\n", B, P, t * 1e3, T / t, tf,
                       100 * tf / ceil_.bf16_tflops);
                printf("{\"bench\":\"cuda\",\"kind\":\"prefill\",\"batch\":%d,\"prompt\":%d,\"ms\":%.3f,"
                       "\"tokens_per_s\":%.1f,\"tflops\":%.2f,\"mfu\":%.4f,\"reps\":%d}\n",
                       B, P, t * 1e3, T / t, tf, tf / ceil_.bf16_tflops, reps);
            }
    }

    if (eo->do_decode) {
        int P = eo->decode_prompt, S = eo->decode_steps;
        for (int t = 0; t < P; t++) {
            seq[t] = 0;
            pos[t] = t;
        }
        int32_t last = P - 1, row0 = 0, s0 = 0;
        hp_fwd f = {.T = P, .ids = ids, .seq = seq, .pos = pos, .n_logits = 1, .logit_rows = &last,
                    .logits_out = logits};
        HP(hp_forward(rt, &f, &e));
        HP_NVTX_PUSH("generate");
        double *ts = xmalloc(sizeof(double) * S);
        int32_t tok = ids[P];
        for (int i = 0; i < S; i++) {
            int32_t p = P + i;
            hp_fwd d = {.T = 1, .ids = &tok, .seq = &s0, .pos = &p, .n_logits = 1, .logit_rows = &row0,
                        .logits_out = logits};
            t0 = now_s();
            HP(hp_forward(rt, &d, &e));
            ts[i] = now_s() - t0;
            int best = 0; /* greedy, as hp_generate */
            for (int v = 1; v < cfg.V; v++)
                if (logits[v] > logits[best]) best = v;
            tok = best;
        }
        HP_NVTX_POP();
        double t = median(ts, S);
        free(ts);
        /* floor: every weight once per step, plus the KV cache read at the mean context */
        double kv = 2.0 * cfg.L * (P + S / 2.0) * cfg.KV * cfg.Dh * be->elem_size(be, HP_MEM_ACT);
        double floor_s = (wbytes + kv) / (ceil_.copy_gbs * 1e9); /* DRAM bytes per second */
        printf("\n== decode, batch 1 (prompt %d, %d greedy steps, logits every step)\n", P, S);
        printf("  median step %.3f ms = %.1f tokens/s; floor %.3f ms (%.2f GB weights + %.3f GB KV at "
               "%.0f GB/s) = %.1f tokens/s; %.1f%% of the floor's speed\n",
               t * 1e3, 1 / t, floor_s * 1e3, wbytes / 1e9, kv / 1e9, ceil_.copy_gbs, 1 / floor_s,
               100 * floor_s / t);
        printf("{\"bench\":\"cuda\",\"kind\":\"decode\",\"batch\":1,\"prompt\":%d,\"steps\":%d,"
               "\"ms\":%.4f,\"tokens_per_s\":%.2f,\"floor_ms\":%.4f,\"ratio\":%.4f}\n",
               P, S, t * 1e3, 1 / t, floor_s * 1e3, floor_s / t);
    }
    free(ids);
    free(seq);
    free(pos);
    free(rows);
    free(logits);
    hp_runtime_free(rt);
    hp_model_free(m);
}

/* ---- SOMP ------------------------------------------------------------------------------------ */

static void bench_somp(int nheads, const int *vocab, int nv, uint64_t seed) {
    const int N = 2048, D = MD, k = 50;
    HP_NVTX_PUSH("somp");
    size_t hn = (size_t)nheads * N * D;
    printf("\n== SOMP, %d heads x N=%d samples, D=%d, k=%d (hp_somp_cuda_batch, signals from host "
           "memory)\n", nheads, N, D, k);
    double t0 = now_s();
    float *H = xmalloc(hn * sizeof(float));
    fill_random(H, hn, seed + 77, 1.0f);
    printf("  %.1f GB of random signals made in %.1f s\n", hn * 4 / 1e9, now_s() - t0);
    for (int vq = 0; vq < 2 * nv; vq++) {
        int V = vocab[vq / 2];
        hp_somp_qr qr = vq % 2 ? HP_SOMP_QR_CGS2 : HP_SOMP_QR_HOUSEHOLDER; /* both QR variants */
        float *Dict = xmalloc((size_t)V * D * sizeof(float));
        fill_random(Dict, (size_t)V * D, seed + 99 + V, 1.0f);
        hp_somp_opts o = {.k = k};
        hp_somp_result *res = xmalloc(sizeof *res * nheads);
        t0 = now_s();
        if (hp_somp_cuda_batch_qr(H, nheads, N, D, Dict, V, &o, 0, qr, res, &e))
            die("hp_somp_cuda_batch_qr", __FILE__, __LINE__, e.msg);
        double t = now_s() - t0, evr = 0;
        int kmin = k;
        for (int h = 0; h < nheads; h++) {
            if (res[h].k) evr += res[h].evr[res[h].k - 1];
            if (res[h].k < kmin) kmin = res[h].k;
            hp_somp_result_free(&res[h]);
        }
        free(res);
        free(Dict);
        /* Floor of this algorithm: signals over PCIe once; per head the correlation GEMM
         * (2·V·N·D at the fp32 SGEMM rate), P written once, read + written each later step,
         * R read + written each step (the projection's second read hits L2). */
        double nh = nheads, steps = k;
        double h2d = 4.0 * N * D * nh;
        double flops = 2.0 * V * (double)N * D * nh;
        double dev = nh * (4.0 * V * N + 8.0 * V * N * (steps - 1) + 8.0 * N * (double)D * steps +
                           4.0 * N * (double)D * 2 /* norms, finite check */);
        double t_floor = h2d / (ceil_.h2d_gbs * 1e9) + flops / (ceil_.f32_tflops * 1e12) +
                         dev / (ceil_.copy_gbs * 1e9);
        printf("  V=%-6d %-20s %8.2f s  (%.2f ms/head; floor %.2f s = PCIe %.2f + SGEMM %.2f + device "
               "traffic %.2f (%.0f GB); %.0f%% of the floor's speed); mean EVR %.4f, min k %d\n",
               V, hp_somp_cuda_qr_name(qr), t, t / nheads * 1e3, t_floor, h2d / (ceil_.h2d_gbs * 1e9),
               flops / (ceil_.f32_tflops * 1e12), dev / (ceil_.copy_gbs * 1e9), dev / 1e9,
               100 * t_floor / t, evr / nheads, kmin);
        printf("{\"bench\":\"cuda\",\"kind\":\"somp\",\"qr\":\"%s\",\"heads\":%d,\"N\":%d,\"D\":%d,\"V\":%d,\"k\":%d,"
               "\"s\":%.3f,\"ms_per_head\":%.3f,\"floor_s\":%.3f,\"ratio\":%.4f,\"mean_evr\":%.5f}\n",
               hp_somp_cuda_qr_name(qr), nheads, N, D, V, k, t, t / nheads * 1e3, t_floor,
               t_floor / t, evr / nheads);
    }
    free(H);
    HP_NVTX_POP();
}

#endif /* HP_HAVE_CUDA */

/* ---- LLaVA-NeXT: the CLIP tower and one anyres image prefill ------------------------------- */

/* llava-v1.6-mistral-7b-hf: no vision_config means transformers' CLIP ViT-L/14-336 (24 layers,
 * D 1024, F 4096, 16 heads, quick_gelu); features from hidden_states[-2] without CLS, so 23
 * layers run; the v1.6 pinpoints spelled out (they are also the default). */
static const char *llava_json =
    "{\"text_config\":{},\"vision_feature_layer\":-2,\"vision_feature_select_strategy\":\"default\","
    "\"image_token_index\":32000,"
    "\"image_grid_pinpoints\":[[336,672],[672,336],[672,672],[1008,336],[336,1008]]}";
/* --tiny: the same structure at a few-layer scale (bench/hf_llava.py --tiny builds the same). */
static const char *llava_tiny_json =
    "{\"text_config\":{},\"vision_config\":{\"hidden_size\":32,\"intermediate_size\":64,"
    "\"num_hidden_layers\":3,\"num_attention_heads\":4,\"image_size\":56,\"patch_size\":14,"
    "\"hidden_act\":\"quick_gelu\",\"layer_norm_eps\":1e-5},\"vision_feature_layer\":-2,"
    "\"vision_feature_select_strategy\":\"default\",\"image_token_index\":32000,"
    "\"image_grid_pinpoints\":[[56,112],[112,56],[112,112],[168,56],[56,168]]}";

/* A stand-in for the tokenized "[INST] <image>\nWhat is shown in this image? [/INST]" with BOS:
 * the ids around the one image token (the values do not change the work; hf_llava.py uses the
 * same). hp_llava_expand replaces the image token by one per image feature. */
static const int32_t llava_pre[] = {1, 733, 16289, 28793, 28705};
static const int32_t llava_post[] = {28705, 13, 3195, 349, 4894, 297, 456, 3469, 28804, 733, 28748, 16289, 28793};
#define NPRE ((int)(sizeof llava_pre / sizeof *llava_pre))
#define NPOST ((int)(sizeof llava_post / sizeof *llava_post))

typedef struct llava_opts {
    int ntiles, tiles[MAXLIST];
    int tiny;
} llava_opts;

/* llava-v1.6-mistral-7b-hf's text_config: Mistral-7B-Instruct-v0.2 with 64 added tokens
 * (<image> = 32000), so V = 32064. */
static hp_config llava_text_config(int tiny) {
    hp_config c = mistral_config();
    c.V = 32064;
    if (tiny) {
        c.D = 64;
        c.L = 2;
        c.H = 4;
        c.KV = 2;
        c.Dh = 16;
        c.F = 128;
    }
    return c;
}

/* FLOPs of the tower over `tiles` tiles as it runs: the patch embedding (2·P·D·C·p² per tile),
 * then feature_hs encoder layers (the later ones are not run), each 2 per weight per row
 * (q, k, v, o: 4·D², fc1, fc2: 2·D·F) plus attention 4·N²·D per tile (QKᵀ and PV). */
static double tower_flops(const hp_llava_config *c, int tiles) {
    const hp_clip_config *v = &c->vis;
    double N = v->N, D = v->D, F = v->F, K = (double)v->C * v->p * v->p;
    double layer = 2.0 * N * (4.0 * D * D + 2.0 * D * F) + 4.0 * N * N * D;
    return tiles * (2.0 * v->P * D * K + c->feature_hs * layer);
}

/* The projector over `rows` selected rows: linear_1 [Dt, D] and linear_2 [Dt, Dt]. */
static double projector_flops(const hp_llava_config *c, double rows) {
    return 2.0 * rows * ((double)c->vis.D * c->Dt + (double)c->Dt * c->Dt);
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* "%.4f" of a ratio to the bf16 GEMM ceiling, or null without one (the CPU backend). */
static const char *mfu_json(char *buf, size_t cap, double tflops) {
    if (ceil_.bf16_tflops > 0)
        snprintf(buf, cap, "%.4f", tflops / ceil_.bf16_tflops);
    else
        snprintf(buf, cap, "null");
    return buf;
}

static const char *mfu_text(char *buf, size_t cap, double tflops) {
    if (ceil_.bf16_tflops > 0)
        snprintf(buf, cap, "%5.1f%%", 100 * tflops / ceil_.bf16_tflops);
    else
        snprintf(buf, cap, "%6s", "-");
    return buf;
}

/* Timed repeats after one warm-up: at least 3, at most `most`, stopping once `budget` seconds
 * are spent. */
static int more_reps(int reps, int most, double spent, double budget) {
    return reps < most && (reps < 3 || spent < budget);
}

/* One image end to end: features (timed into *tv), then hp_forward with them injected at the
 * image tokens (*td); *finite cleared on a NaN or inf in the features or the logits. */
static void llava_prefill_once(const hp_llava *lv, hp_runtime *rt, const hp_pixels *px,
                               const hp_fwd *f0, const int32_t *ipos, int nfeat, double *tv,
                               double *td, int *finite) {
    float *feats = NULL;
    int nf = 0;
    double a = now_s();
    HP(hp_llava_image_features(lv, px, &feats, &nf, &e));
    double b = now_s();
    if (nf != nfeat) die("hp_llava_image_features", __FILE__, __LINE__, "feature count != geometry");
    hp_fwd f = *f0;
    f.n_inject = nf;
    f.inject_rows = ipos;
    f.inject = feats;
    HP(hp_forward(rt, &f, &e));
    *td = now_s() - b;
    *tv = b - a;
    *finite = *finite && all_finite(feats, (size_t)nf * lv->cfg.Dt) &&
              all_finite(f0->logits_out, (size_t)lv->m->cfg.V);
    free(feats);
}

static void bench_llava(hp_backend *be, const llava_opts *lo, uint64_t seed) {
    const char *bench = be->name; /* "cuda" or "cpu" */
    char mb[32];
    HP_NVTX_PUSH("llava");
    cJSON *root = cJSON_Parse(lo->tiny ? llava_tiny_json : llava_json);
    if (!root) die("cJSON_Parse", __FILE__, __LINE__, "bad built-in LLaVA config");
    hp_llava_config vc;
    HP(hp_llava_vision_config(root, "llava-v1.6-mistral-7b (built in)", &vc, &e));
    cJSON_Delete(root);
    hp_config tc = llava_text_config(lo->tiny);
    HP_NVTX_PUSH("load");
    double t0 = now_s();
    hp_llava *lv = hp_llava_random(&vc, &tc, be, seed, &e);
    if (!lv) die("hp_llava_random", __FILE__, __LINE__, e.msg);
    double t_load = now_s() - t0;
    HP_NVTX_POP();
    const hp_llava_config *c = &lv->cfg;
    const hp_clip_config *v = &c->vis;
    printf("\n== LLaVA-NeXT, llava-v1.6-mistral-7b shape%s, random weights on %s: CLIP %d of %d layers "
           "run (D %d, F %d, %d heads, %dx%d tiles of %d patches), projector %d -> %d, decoder %.4gM "
           "parameters; %.4gM in all, made and uploaded in %.1f s\n",
           lo->tiny ? " (--tiny)" : "", be->desc, c->feature_hs, v->L, v->D, v->F, v->H, v->S, v->S,
           v->P, v->D, c->Dt, lv->m->n_params / 1e6, (lv->m->n_params + lv->n_params) / 1e6, t_load);

    /* one 2S x 2S image: the 2x2-grid pinpoint (672x672 at S = 336), 1 + 4 tiles */
    int img = 2 * v->S, nt, gh, gw, uh, uw;
    int nfeat = hp_llava_geometry(lv, img, img, &nt, &gh, &gw, &uh, &uw, &e);
    if (nfeat < 0) die("hp_llava_geometry", __FILE__, __LINE__, e.msg);
    int maxt = nt;
    for (int i = 0; i < lo->ntiles; i++) maxt = lo->tiles[i] > maxt ? lo->tiles[i] : maxt;
    size_t pix = (size_t)v->C * v->S * v->S;
    float *pixels = xmalloc(sizeof(float) * maxt * pix);
    fill_random(pixels, (size_t)maxt * pix, seed + 31, 1.8f); /* normalised pixels span ~[-1.8, 2.1] */
    float *tout = xmalloc(sizeof(float) * (size_t)maxt * c->P_sel * v->D);

    /* The tower alone: pixels up (host float32), hidden_states[feature_hs] without CLS back down,
     * each call allocating and freeing its activations (hp_llava_tower as the commands use it). */
    HP_NVTX_PUSH("llava:tower");
    printf("\n== CLIP tower (hp_llava_tower: pixels from host, %d layers, features to host; MFU vs the "
           "bf16 GEMM ceiling)\n", c->feature_hs);
    printf("  %5s %10s %10s %9s %6s %9s\n", "tiles", "ms", "tiles/s", "TFLOP/s", "MFU", "GFLOP");
    for (int i = 0; i < lo->ntiles; i++) {
        int n = lo->tiles[i];
        HP(hp_llava_tower(lv, pixels, n, tout, &e)); /* warm-up */
        int finite = all_finite(tout, (size_t)n * c->P_sel * v->D);
        double ts[15], spent = 0;
        int reps = 0;
        while (more_reps(reps, 15, spent, 2.0)) {
            t0 = now_s();
            HP(hp_llava_tower(lv, pixels, n, tout, &e));
            ts[reps] = now_s() - t0;
            spent += ts[reps++];
        }
        double t = median(ts, reps), fl = tower_flops(c, n), tf = fl / t / 1e12;
        char mt[16];
        printf("  %5d %10.2f %10.1f %9.2f %6s %9.4g%s\n", n, t * 1e3, n / t, tf,
               mfu_text(mt, sizeof mt, tf), fl / 1e9, finite ? "" : "  NON-FINITE OUTPUT");
        printf("{\"bench\":\"%s\",\"kind\":\"llava_tower\",\"tiles\":%d,\"layers\":%d,\"tiny\":%s,"
               "\"ms\":%.3f,\"tiles_per_s\":%.2f,\"gflop\":%.6g,\"tflops\":%.4g,\"mfu\":%s,\"reps\":%d,"
               "\"finite\":%s}\n",
               bench, n, c->feature_hs, lo->tiny ? "true" : "false", t * 1e3, n / t, fl / 1e9, tf,
               mfu_json(mb, sizeof mb, tf), reps, finite ? "true" : "false");
    }
    HP_NVTX_POP();

    /* One image end to end. The projected rows come down to the host (packing is host code:
     * inside vision_ms) and hp_forward uploads the packed rows again one at a time (inside
     * decoder_ms); decoder_noinject_ms (the same ids, embeddings looked up) is the decoder
     * without that upload. */
    HP_NVTX_PUSH("llava:prefill");
    hp_pixels px = {.n_tiles = nt, .size = v->S, .data = pixels, .orig_h = img, .orig_w = img,
                    .best_h = img, .best_w = img};
    int32_t raw[NPRE + 1 + NPOST];
    memcpy(raw, llava_pre, sizeof llava_pre);
    raw[NPRE] = c->image_token;
    memcpy(raw + NPRE + 1, llava_post, sizeof llava_post);
    int32_t *ids = NULL, *ipos = NULL;
    int T = 0;
    HP(hp_llava_expand(lv, raw, NPRE + 1 + NPOST, nfeat, &ids, &T, &ipos, &e));
    hp_runtime *rt = hp_runtime_create(lv->m, 1, T, T, 0, &e);
    if (!rt) die("hp_runtime_create", __FILE__, __LINE__, e.msg);
    int32_t *seq = xmalloc(sizeof(int32_t) * T), *pos = xmalloc(sizeof(int32_t) * T), last = T - 1;
    for (int t = 0; t < T; t++) {
        seq[t] = 0;
        pos[t] = t;
    }
    float *logits = xmalloc(sizeof(float) * (size_t)lv->m->cfg.V);
    hp_fwd f0 = {.T = T, .ids = ids, .seq = seq, .pos = pos, .n_logits = 1, .logit_rows = &last,
                 .logits_out = logits};
    double tv[7], td[7], tt[7], t0d[7], spent = 0;
    int reps = 0, finite = 1;
    llava_prefill_once(lv, rt, &px, &f0, ipos, nfeat, &tv[0], &td[0], &finite); /* warm-up */
    while (more_reps(reps, 7, spent, 4.0)) {
        llava_prefill_once(lv, rt, &px, &f0, ipos, nfeat, &tv[reps], &td[reps], &finite);
        tt[reps] = tv[reps] + td[reps];
        spent += tt[reps++];
    }
    /* the decoder alone over the same T positions, no injected rows */
    HP(hp_forward(rt, &f0, &e));
    for (int r = 0; r < reps; r++) {
        double a = now_s();
        HP(hp_forward(rt, &f0, &e));
        t0d[r] = now_s() - a;
    }
    HP_NVTX_POP();
    double mv = median(tv, reps), md = median(td, reps), mt = median(tt, reps), md0 = median(t0d, reps);
    double rows = (double)nt * c->P_sel;
    double fl_v = tower_flops(c, nt) + projector_flops(c, rows);
    double fl_d = prefill_flops(&lv->m->cfg, 1, T), tf = (fl_v + fl_d) / mt / 1e12;
    double trip = (rows + nfeat) * c->Dt * sizeof(float); /* host float32: projected rows down, packed rows up */
    char m1[16], m2[16], m3[16];
    printf("\n== LLaVA-NeXT anyres prefill: one %dx%d image (%d tiles: base + %dx%d grid), %d image "
           "tokens + %d text = %d positions, logits of the last (MFU vs the bf16 GEMM ceiling)\n",
           img, img, nt, gh, gw, nfeat, NPRE + NPOST, T);
    char lab[96];
    printf("  %-58s %9.2f ms %8.2f TFLOP/s %s\n", "vision: hp_llava_image_features (tower, projector, packing)",
           mv * 1e3, fl_v / mv / 1e12, mfu_text(m1, sizeof m1, fl_v / mv / 1e12));
    snprintf(lab, sizeof lab, "decoder: hp_forward, %d rows injected from the host", nfeat);
    printf("  %-58s %9.2f ms %8.2f TFLOP/s %s\n", lab, md * 1e3, fl_d / md / 1e12,
           mfu_text(m2, sizeof m2, fl_d / md / 1e12));
    printf("  %-58s %9.2f ms (injection %+.2f ms: %.2f MB of float32 rows up one by one; %.2f MB "
           "came down in vision)\n", "decoder without injection (same ids, embeddings looked up)",
           md0 * 1e3, (md - md0) * 1e3, nfeat * c->Dt * 4.0 / 1e6, rows * c->Dt * 4.0 / 1e6);
    printf("  %-58s %9.2f ms %8.2f TFLOP/s %s = %.0f positions/s, median of %d%s\n", "total", mt * 1e3,
           tf, mfu_text(m3, sizeof m3, tf), T / mt, reps, finite ? "" : "  NON-FINITE OUTPUT");
    printf("{\"bench\":\"%s\",\"kind\":\"llava_prefill\",\"tiny\":%s,\"image\":[%d,%d],\"tiles\":%d,"
           "\"image_tokens\":%d,\"tokens\":%d,\"ms\":%.3f,\"vision_ms\":%.3f,\"decoder_ms\":%.3f,"
           "\"decoder_noinject_ms\":%.3f,\"roundtrip_mb\":%.2f,\"tokens_per_s\":%.1f,\"gflop\":%.6g,"
           "\"vision_gflop\":%.6g,\"tflops\":%.4g,\"mfu\":%s,\"reps\":%d,\"finite\":%s}\n",
           bench, lo->tiny ? "true" : "false", img, img, nt, nfeat, T, mt * 1e3, mv * 1e3, md * 1e3,
           md0 * 1e3, trip / 1e6, T / mt, (fl_v + fl_d) / 1e9, fl_v / 1e9, tf,
           mfu_json(mb, sizeof mb, tf), reps, finite ? "true" : "false");
    free(logits);
    free(seq);
    free(pos);
    free(ids);
    free(ipos);
    hp_runtime_free(rt);
    free(tout);
    free(pixels);
    hp_llava_free(lv);
    HP_NVTX_POP();
}

/* ---- main ------------------------------------------------------------------------------------ */

static int usage(void) {
    fprintf(stderr,
            "usage: bench_cuda [--only ceil,ops,prefill,decode,llava,somp] [--batches 1,8,64] "
            "[--prompts 64,512,2048]\n"
            "                  [--somp-heads 1024] [--somp-vocab 256,32000] [--decode-prompt 512] "
            "[--decode-steps 64]\n"
            "                  [--llava-tiles 1,5,10] [--device cuda|cpu] [--tiny] [--seed S]\n"
            "  --device cpu  the llava section alone on the CPU backend (no ceilings, no MFU)\n"
            "  --tiny        the llava section at a few-layer shape (a quick check of its code path)\n");
    return 2;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    e2e_opts eo = {.nb = 3, .np = 3, .batches = {1, 8, 64}, .prompts = {64, 512, 2048},
                   .decode_prompt = 512, .decode_steps = 64, .do_prefill = 1, .do_decode = 1};
    llava_opts lo = {.ntiles = 3, .tiles = {1, 5, 10}};
    int somp_heads = 1024, vocab[MAXLIST] = {256, 32000}, nvocab = 2;
    int do_ops = 1, do_somp = 1, do_llava = 1, cpu = 0;
    uint64_t seed = 1234;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--only") && v) {
            do_ops = strstr(v, "ops") != NULL;
            eo.do_prefill = strstr(v, "prefill") != NULL;
            eo.do_decode = strstr(v, "decode") != NULL;
            do_llava = strstr(v, "llava") != NULL;
            do_somp = strstr(v, "somp") != NULL;
            i++;
        } else if (!strcmp(a, "--batches") && v) {
            if ((eo.nb = parse_list(argv[++i], eo.batches)) <= 0) return usage();
        } else if (!strcmp(a, "--prompts") && v) {
            if ((eo.np = parse_list(argv[++i], eo.prompts)) <= 0) return usage();
        } else if (!strcmp(a, "--somp-vocab") && v) {
            if ((nvocab = parse_list(argv[++i], vocab)) <= 0) return usage();
        } else if (!strcmp(a, "--somp-heads") && v) {
            if ((somp_heads = atoi(argv[++i])) <= 0) return usage();
        } else if (!strcmp(a, "--decode-prompt") && v) {
            if ((eo.decode_prompt = atoi(argv[++i])) <= 0) return usage();
        } else if (!strcmp(a, "--decode-steps") && v) {
            if ((eo.decode_steps = atoi(argv[++i])) <= 0) return usage();
        } else if (!strcmp(a, "--llava-tiles") && v) {
            if ((lo.ntiles = parse_list(argv[++i], lo.tiles)) <= 0) return usage();
        } else if (!strcmp(a, "--device") && v) {
            if (!strcmp(v, "cpu"))
                cpu = 1;
            else if (strcmp(v, "cuda"))
                return usage();
            i++;
        } else if (!strcmp(a, "--tiny")) {
            lo.tiny = 1;
        } else if (!strcmp(a, "--seed") && v) {
            seed = strtoull(argv[++i], NULL, 0);
        } else {
            return usage();
        }
    }
    if (cpu) {
        /* Only the llava section has a CPU form: the others measure CUDA kernels and ceilings. */
        if (!do_llava) {
            fprintf(stderr, "bench_cuda: --device cpu runs only the llava section\n");
            return 2;
        }
        hp_backend *be = hp_backend_cpu_create(0, &e);
        if (!be) die("hp_backend_cpu_create", __FILE__, __LINE__, e.msg);
        printf("backend: %s (llava section only)\n", be->desc);
        bench_llava(be, &lo, seed);
        be->destroy(be);
        return 0;
    }
#ifdef HP_HAVE_CUDA
    int ndev = 0;
    cudaError_t rc = cudaGetDeviceCount(&ndev);
    if (rc != cudaSuccess || ndev <= 0) {
        /* Without a driver the runtime's own text ("CUDA driver version is insufficient for CUDA
         * runtime version") reads like a version problem; say what it means. */
        printf("skipped: no CUDA driver / no GPU (%s)\n",
               rc != cudaSuccess ? "the CUDA runtime cannot reach a driver" : "the driver finds no device");
        return 0;
    }
    struct cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    snprintf(dev_name, sizeof dev_name, "%s", prop.name);
    l2_bytes = prop.l2CacheSize;
    sm_count = prop.multiProcessorCount;
    measure_ceilings(); /* always: every ratio needs them */
    hp_backend *be = hp_backend_cuda_create(0, &e);
    if (!be) die("hp_backend_cuda_create", __FILE__, __LINE__, e.msg);
    printf("backend: %s\n", be->desc);
    if (do_ops) bench_ops(be, seed);
    if (eo.do_prefill || eo.do_decode) bench_model(be, &eo, seed);
    if (do_llava) bench_llava(be, &lo, seed);
    be->destroy(be);
    if (do_somp) bench_somp(somp_heads, vocab, nvocab, seed);
    return 0;
#else
    (void)somp_heads;
    (void)nvocab;
    (void)do_ops;
    (void)do_somp;
    printf("skipped: no CUDA backend in this build (--device cpu runs the llava "
           "section)\n");
    return 0;
#endif
}
