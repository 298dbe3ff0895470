/* `ddpt version`: ddpt's version and git revision, and the versions of the
 * libraries it actually runs with (queried at run time, not from headers). */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "comm/comm.h"
#include "corpus/corpus.h"
#include "ddpt_version.h"
#include "storage/storage.h"
#include "trainer/blas.h"
#include "trainer/gemm.h"

int cmd_version(int argc, char **argv) {
  static const struct option opts[] = {{NULL, 0, NULL, 0}};
  opterr = 0;
  optind = 0;
  if (getopt_long(argc, argv, "+", opts, NULL) != -1) return cli_bad_option("version", argc, argv);
  if (optind < argc) return cli_usage_error("version", "unexpected argument '%s'", argv[optind]);

  char line[512];
  printf("ddpt %s (git %s)\n", DDPT_VERSION, DDPT_GIT_REVISION);
  comm_library_version(line, sizeof line);
  printf("  mpi:      %s\n", line);
  storage_library_version(line, sizeof line);
  printf("  hdf5:     %s\n", line);
  blas_library_version(line, sizeof line);
  printf("  blas:     %s\n", line);
  /* The bf16 products' library and the ISA it dispatches to, and whether
   * precision = bf16 runs here (natively) or is refused. */
  gemm_onednn_version(line, sizeof line);
  printf("  onednn:   %s, precision = bf16 %s\n", line,
         !gemm_bf16_supported(NULL, 0) ? "refused (no native bf16)"
         : gemm_bf16_emulated()        ? "supported, emulated in fp32 (DDPT_TEST_BF16_EMULATE: tests only)"
                                       : "supported");
  corpus_leveldb_version(line, sizeof line);
  printf("  leveldb:  %s\n", line);
  corpus_utf8proc_version(line, sizeof line);
  printf("  unicode:  %s\n", line);
  return CLI_EXIT_OK;
}
