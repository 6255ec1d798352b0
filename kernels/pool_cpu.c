/* pool_cpu.c: a small thread pool for the short parallel products of decoding (hundreds per
 * token, 10–50 µs each), where OpenMP under OMP_WAIT_POLICY=PASSIVE pays a futex wake-up per
 * region and a spinning OpenMP loses badly to other processes. Threads spin briefly (about
 * 100 µs) for the next job, then sleep on a futex. A job is n chunks claimed one at a time from
 * one atomic ticket (job number | n | next chunk); the caller works too and waits only for the
 * chunks to be completed, never for a thread to check in, so a descheduled thread delays a job
 * by at most the one chunk it holds. A job's fields stay valid while any of its chunks is
 * claimed and not completed (the caller waits for all of them before posting the next job). */
#include "pool_cpu.h"

#include <linux/futex.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RELAX() _mm_pause()
#else
#define RELAX() ((void)0)
#endif

#define MAX_THREADS 64
#define SPIN_NS 100000 /* spin this long before sleeping */
#define N_BITS 20      /* ticket: job number (24 bits) | n (20) | next chunk (20) */
#define N_MASK ((1ull << N_BITS) - 1)

static struct {
    pthread_once_t once;
    pthread_mutex_t busy; /* one job at a time; a second caller runs serially */
    int nth;              /* threads including the caller */
    _Atomic uint64_t ticket;
    _Atomic int gen;       /* futex word the workers sleep on: bumped per job */
    _Atomic int sleepers;  /* workers asleep (or about to be) on gen */
    _Atomic int completed; /* chunks of the current job done; futex word of the caller */
    _Atomic int caller_sleeping;
    void (*fn)(void *ctx, int i);
    void *ctx;
} P = {.once = PTHREAD_ONCE_INIT, .busy = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local int in_pool; /* a pool thread, or the caller inside a job */

static void futex_wait(_Atomic int *a, int val) {
    syscall(SYS_futex, (int *)a, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}
static void futex_wake(_Atomic int *a, int n) {
    syscall(SYS_futex, (int *)a, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}
static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Claims and runs chunks of job g until none is left. */
static void run_chunks(uint64_t g) {
    for (;;) {
        uint64_t t = atomic_load(&P.ticket);
        if (t >> (2 * N_BITS) != g) return;
        uint64_t next = t & N_MASK, n = (t >> N_BITS) & N_MASK;
        if (next >= n) return;
        if (!atomic_compare_exchange_weak(&P.ticket, &t, t + 1)) continue;
        P.fn(P.ctx, (int)next);
        atomic_fetch_add(&P.completed, 1);
        if (atomic_load(&P.caller_sleeping)) futex_wake(&P.completed, 1);
    }
}

static void *worker(void *arg) {
    (void)arg;
    in_pool = 1;
    int seen = atomic_load(&P.gen);
    for (;;) {
        int64_t t0 = now_ns();
        int g;
        while ((g = atomic_load(&P.gen)) == seen) {
            RELAX();
            if (now_ns() - t0 < SPIN_NS) continue;
            atomic_fetch_add(&P.sleepers, 1);
            if (atomic_load(&P.gen) == seen) futex_wait(&P.gen, seen);
            atomic_fetch_sub(&P.sleepers, 1);
        }
        seen = g;
        run_chunks(atomic_load(&P.ticket) >> (2 * N_BITS));
    }
    return NULL;
}

static void init(void) {
    P.nth = omp_get_max_threads();
    if (P.nth > MAX_THREADS) P.nth = MAX_THREADS;
    for (int i = 1; i < P.nth; i++) {
        pthread_t th;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &a, worker, NULL) != 0) {
            P.nth = i; /* run with the threads that started */
            pthread_attr_destroy(&a);
            break;
        }
        pthread_attr_destroy(&a);
    }
}

int hp_pool_threads(void) {
    pthread_once(&P.once, init);
    return P.nth;
}

void hp_pool_run(int n, void (*fn)(void *ctx, int i), void *ctx) {
    if (n <= 0) return;
    pthread_once(&P.once, init);
    if (n == 1 || P.nth == 1 || n > (int)N_MASK || in_pool || omp_in_parallel() ||
        pthread_mutex_trylock(&P.busy) != 0) {
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    in_pool = 1;
    P.fn = fn;
    P.ctx = ctx;
    atomic_store(&P.completed, 0);
    uint64_t g = ((atomic_load(&P.ticket) >> (2 * N_BITS)) + 1) & 0xFFFFFF;
    atomic_store(&P.ticket, g << (2 * N_BITS) | (uint64_t)n << N_BITS);
    atomic_fetch_add(&P.gen, 1);
    if (atomic_load(&P.sleepers)) futex_wake(&P.gen, P.nth);
    run_chunks(g);
    int64_t t0 = now_ns();
    int c;
    while ((c = atomic_load(&P.completed)) < n) {
        RELAX();
        if (now_ns() - t0 < SPIN_NS) continue;
        atomic_store(&P.caller_sleeping, 1);
        if ((c = atomic_load(&P.completed)) < n) futex_wait(&P.completed, c);
        atomic_store(&P.caller_sleeping, 0);
    }
    in_pool = 0;
    pthread_mutex_unlock(&P.busy);
}
