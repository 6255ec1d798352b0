/* nvToolsExt.h (cuda_emu): NVTX ranges are no-ops under the emulator. */
#ifndef HP_EMU_NVTX_H
#define HP_EMU_NVTX_H
static inline int nvtxRangePushA(const char *name) { (void)name; return 0; }
static inline int nvtxRangePop(void) { return 0; }
#endif
