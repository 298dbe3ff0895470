/* safetensors: HuggingFace's tensor file format, read and written in C.
 * A file is an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 * ..., "__metadata__": {...}}), then the data, row-major, little-endian.
 * A model directory holds model.safetensors, or several shards and
 * model.safetensors.index.json mapping each tensor name to its shard.
 *
 * Conventions:
 *  1. Statuses and messages as util/status.h. Every message names the file
 *     and, where one is at fault, the tensor.
 *  2. Reading checks everything before handing out a single tensor: header
 *     length <= SAFET_HEADER_MAX, JSON that parses, known dtype strings,
 *     data_offsets that tile the data region exactly (sorted by begin: no
 *     gap, no overlap, starting at 0, ending at the file's end), and each
 *     tensor's byte size equal to prod(shape) * dtype size.
 *  3. Values reach callers as float32: F32 verbatim, F16 and BF16 widened
 *     exactly. Other dtypes are listed (they are valid files, e.g. an I64
 *     position_ids buffer) but cannot be read as float.
 *  4. Writing is atomic (util/file.h): the file appears complete or not at
 *     all. The header is padded with spaces to a multiple of 8 bytes and
 *     carries "__metadata__": {"format": "pt"}; data follows in the order
 *     given, back to back. Narrowing to F16/BF16 rounds to nearest even.
 */
#ifndef DDPT_STORAGE_SAFETENSORS_H
#define DDPT_STORAGE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "storage/ckpt.h"

enum { SAFET_HEADER_MAX = 100 * 1000 * 1000 };

typedef enum {
  SAFET_F32, SAFET_F16, SAFET_BF16, /* readable as float */
  SAFET_F64, SAFET_I64, SAFET_I32, SAFET_I16, SAFET_I8, SAFET_U64, SAFET_U32, SAFET_U16,
  SAFET_U8, SAFET_BOOL, SAFET_F8_E4M3, SAFET_F8_E5M2,
} safet_dtype;

/* "F32", "BF16", ...; and back (-1 for an unknown string). */
const char *safet_dtype_name(safet_dtype d);
int safet_dtype_parse(const char *s);
size_t safet_dtype_size(safet_dtype d);

/* One tensor as the header describes it. */
typedef struct safet_info {
  char *name;
  safet_dtype dtype;
  int ndim; /* 0 (a scalar) .. CKPT_NDIM_MAX */
  size_t shape[CKPT_NDIM_MAX];
  size_t count;        /* elements: prod(shape), 1 for a scalar */
  uint64_t begin, end; /* byte offsets into the data region */
} safet_info;

/* Parses and checks a header (the JSON bytes, without the length prefix)
 * for a file whose data region is data_size bytes. Pure: no I/O, so it is
 * what the fuzzer drives. *out (malloc'd array of *n, in file order of
 * data_offsets) is freed with safet_infos_free. `what` names the file in
 * messages. */
int safet_header_parse(const char *json, size_t len, uint64_t data_size, const char *what,
                       safet_info **out, size_t *n, char **err);
void safet_infos_free(safet_info *t, size_t n);

/* A model: one .safetensors file, a directory with model.safetensors, or a
 * directory (or the index file itself) with model.safetensors.index.json and
 * its shards. Every file is checked as in convention 2 when opened; the
 * index must name each tensor once, every shard must hold exactly the
 * tensors the index gives it, and no tensor may appear in two shards. */
typedef struct safet_model safet_model;
int safet_model_open(const char *path, safet_model **out, char **err);
void safet_model_close(safet_model *m);

/* The tensors of all shards: shards in file-name order, each in file order
 * (by data_offsets). */
size_t safet_model_count(const safet_model *m);
const safet_info *safet_model_info(const safet_model *m, size_t i);
/* -1 if absent. */
long safet_model_find(const safet_model *m, const char *name);
/* Reads tensor i into dst (count floats; 16-bit dtypes use all of it while
 * widening, no other buffer). ST_INVALID when its dtype is not
 * F32/F16/BF16; ST_IO/ST_CORRUPT when the file changed or cannot be read. */
int safet_model_read_f32(safet_model *m, size_t i, float *dst, char **err);

/* A tensor to write: float32 values, converted to the file's dtype. */
typedef struct safet_tensor {
  const char *name;
  int ndim; /* 1..CKPT_NDIM_MAX */
  size_t shape[CKPT_NDIM_MAX];
  const float *data;
} safet_tensor;

/* Writes t[0..n) to path (atomically; an existing file is replaced) in
 * dtype, which is SAFET_F32, SAFET_F16 or SAFET_BF16. A finite value that
 * rounds beyond F16's 65504 fails naming the tensor and nothing is written;
 * infinities and NaN are kept as such. */
int safet_write(const char *path, const safet_tensor *t, size_t n, safet_dtype dtype, char **err);

#endif
