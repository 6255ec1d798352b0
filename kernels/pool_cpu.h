/* pool_cpu.h: the CPU backend's own thread pool for short parallel loops (kernels/pool_cpu.c). */
#ifndef HP_POOL_CPU_H
#define HP_POOL_CPU_H

/* Runs fn(ctx, i) for every i in [0, n), the chunks taken dynamically by the pool's threads and
 * the caller; returns when all are done. Serial when called from inside a job or an OpenMP
 * parallel region, or while another thread's job runs. */
void hp_pool_run(int n, void (*fn)(void *ctx, int i), void *ctx);
/* Threads of the pool, the caller included (OpenMP's thread count at first use). */
int hp_pool_threads(void);

#endif
