/* nvtx.h: NVTX ranges around the program's phases (load, forward, capture, readout, SOMP,
 * edit, generate) so that `nsys profile` timelines show them. NVTX v3 is header-only: the
 * calls are no-ops costing a few ns unless a profiler injects its library at run time. Without
 * CUDA in the build (and outside nvcc) the macros compile to nothing.
 *
 *   HP_NVTX_PUSH("somp");  ...  HP_NVTX_POP();     ranges nest; each push needs its pop */
#ifndef HP_NVTX_H
#define HP_NVTX_H

#if defined(HP_HAVE_CUDA) || defined(__CUDACC__)
#include <nvtx3/nvToolsExt.h>
#define HP_NVTX_PUSH(name) ((void)nvtxRangePushA(name))
#define HP_NVTX_POP() ((void)nvtxRangePop())
#else
#define HP_NVTX_PUSH(name) ((void)0)
#define HP_NVTX_POP() ((void)0)
#endif

#endif
