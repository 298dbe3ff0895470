/* The BLAS ddpt computes with (OpenBLAS): identification for `ddpt version`
 * and benchmark reports. */
#ifndef DDPT_TRAINER_BLAS_H
#define DDPT_TRAINER_BLAS_H

#include <stddef.h>

/* "OpenBLAS 0.3.21 (kernel SkylakeX, 2 threads)" or similar. */
void blas_library_version(char *buf, size_t size);
/* The kernel OpenBLAS selected at load time, e.g. "Prescott", "SkylakeX". */
const char *blas_corename(void);

#endif
