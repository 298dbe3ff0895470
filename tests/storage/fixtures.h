/* Shared by the storage tests: a small BERT-named dictionary whose values
 * come from a closed formula (not from the code under test), and helpers
 * that damage files the way disks and crashes do. */
#ifndef DDPT_TESTS_STORAGE_FIXTURES_H
#define DDPT_TESTS_STORAGE_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#include "storage/ckpt.h"

enum { FIXTURE_NT = 6 };

/* Element i of tensor k: a multiple of 1/1024 in [-9.8, 9.8], exact in
 * float32 (tests/parity/ckpt_h5py_check.py computes the same numbers). */
float fixture_value(unsigned k, size_t i);

typedef struct fixture {
  ckpt_tensor params[FIXTURE_NT], m[FIXTURE_NT], v[FIXTURE_NT];
  int64_t cursor[4 * 3]; /* (4 shards, (shard, epoch, position)) */
  int64_t dropout[2];
  ckpt_array arrays[2];
  ckpt_content content;
  float *buf;
} fixture;

/* Params k = 0..5 take fixture_value(k, .), m k + 10, v k + 20. */
void fixture_init(fixture *fx, int64_t step);
void fixture_free(fixture *fx);
size_t fixture_count(const ckpt_tensor *t);

/* Name of the 2-D tensor whose bytes fixture_flip_bit looks for. */
#define FIXTURE_QUERY "bert.encoder.layer.0.attention.self.query.weight"

/* Flips one bit inside the stored values of params/FIXTURE_QUERY, found by
 * its byte pattern. Returns 0 on success. */
int fixture_flip_bit_in_query(const char *path);
/* Cuts the file to half its size. Returns 0 on success. */
int fixture_truncate_half(const char *path);

/* Nonzero when haystack is not NULL and holds needle. */
int fixture_contains(const char *haystack, const char *needle);

/* Writes text to dir/name (replacing it). Returns 0 on success. */
int fixture_write_text(const char *dir, const char *name, const char *text);
/* Nonzero when dir/name exists. */
int fixture_exists(const char *dir, const char *name);
/* Number of entries in dir whose names match the glob (fnmatch). */
int fixture_count_matching(const char *dir, const char *glob);

#endif
