/* gpu_test.h: what the GPU tests share: random numbers, a printed (repeatable) seed and the device
 * check that reports "skipped: no CUDA driver / no GPU" (exit 77) where there is none. Any error from
 * cudaGetDeviceCount counts as no device: without a driver it fails rather than returning 0. */
#ifndef HP_GPU_TEST_H
#define HP_GPU_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#ifdef HP_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

/* The tests' random numbers: splitmix64 state seeded from hp_test_seed(). */
static uint64_t rng;

static inline uint64_t rng_next(void) {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline double rng_uniform(void) { return (rng_next() >> 11) * (1.0 / 9007199254740992.0); }
static inline float rng_normal(void) { /* Box-Muller */
    double u = rng_uniform(), v = rng_uniform();
    return (float)(sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v));
}

/* malloc that ends the test (exit 1, "FAIL") when the host is out of memory. */
static inline void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "FAIL out of host memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

/* HP_SEED or a fresh seed, printed so that a failing run can be repeated. */
static inline uint64_t hp_test_seed(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep every line if a kernel fault kills the process */
    const char *s = getenv("HP_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 0) : ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
    printf("seed %llu (HP_SEED=%llu repeats this run)\n", (unsigned long long)seed,
           (unsigned long long)seed);
    return seed;
}

/* 1 when a CUDA device can be used (its name printed); else prints the skip line, returns 0. */
static inline int hp_test_cuda_device(void) {
#ifndef HP_HAVE_CUDA
    printf("skipped: no CUDA backend in this build (nvcc not found, or NO_CUDA=1)\n");
    return 0;
#else
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
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
        printf("device: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
    return 1;
#endif
}

#endif
