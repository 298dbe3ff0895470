/* OpenBLAS identification (see blas.h). */
#include "trainer/blas.h"

#include <stdio.h>
#include <string.h>

#include <cblas.h>

const char *blas_corename(void) { return openblas_get_corename(); }

void blas_library_version(char *buf, size_t size) {
  /* openblas_get_config() reads "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY
   * Prescott MAX_THREADS=64": keep the name and version only. */
  char config[256];
  snprintf(config, sizeof config, "%s", openblas_get_config());
  char *space = strchr(config, ' ');
  if (space) space = strchr(space + 1, ' ');
  if (space) *space = '\0';
  snprintf(buf, size, "%s (kernel %s, %d threads)", config, openblas_get_corename(),
           openblas_get_num_threads());
}
