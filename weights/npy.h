/* npy.h: NumPy .npy files (format 1.0/2.0/3.0), little-endian, C order. Readers accept
 * float32/float64 (converted to the requested float type) and int32/int64 (to int32, range
 * checked). Writing is atomic (see fileio.h). */
#ifndef HP_NPY_H
#define HP_NPY_H

#include "common.h"

#define HP_NPY_MAXDIM 8

int hp_npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[HP_NPY_MAXDIM], hp_err *e);
int hp_npy_read_f64(const char *path, double **data, int *ndim, int64_t shape[HP_NPY_MAXDIM], hp_err *e);
int hp_npy_read_i32(const char *path, int32_t **data, int *ndim, int64_t shape[HP_NPY_MAXDIM], hp_err *e);
int hp_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape, hp_err *e);
int hp_npy_write_f64(const char *path, const double *data, int ndim, const int64_t *shape, hp_err *e);
int hp_npy_write_i32(const char *path, const int32_t *data, int ndim, const int64_t *shape, hp_err *e);

#endif
