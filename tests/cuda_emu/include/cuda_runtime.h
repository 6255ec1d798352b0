/* cuda_runtime.h (cuda_emu): the runtime API plus, in C++, the device model (emu_device.h) that
 * lets kernels/ *.cu compile as host code. The build passes `-include cuda_runtime.h` to g++,
 * as nvcc includes it implicitly in every .cu file. */
#ifndef HP_EMU_CUDA_RUNTIME_H
#define HP_EMU_CUDA_RUNTIME_H
#include "cuda_runtime_api.h"
#ifdef __cplusplus
#include "emu_device.h"
#endif
#endif
