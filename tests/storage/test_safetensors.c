/* storage/safetensors: F32 round trips bit for bit, F16/BF16 narrowing
 * against hand-computed bit patterns and widening against the formula for
 * every 16-bit value, the header's layout, every check of a hand-made bad
 * file (one line naming the tensor), sharded models and their indexes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixtures.h"
#include "harness.h"
#include "storage/safetensors.h"
#include "util/file.h"
#include "util/status.h"

static char *dir;

static char *fresh_path(const char *name) {
  free(dir);
  dir = harness_tmpdir("safet");
  return file_path_join(dir, name);
}

static void cleanup(char *path) {
  free(path);
  harness_rmtree(dir);
  free(dir);
  dir = NULL;
}

/* A file written by hand: the 8-byte length of header, header, then
 * data_len bytes of data (counting up from 1). */
static void write_raw(const char *path, const char *header, size_t data_len) {
  FILE *f = fopen(path, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  uint64_t n = strlen(header);
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(n >> 8 * i);
  fwrite(len8, 1, 8, f);
  fputs(header, f);
  for (size_t i = 0; i < data_len; i++) fputc((int)(i + 1), f);
  CU_ASSERT_EQUAL(fclose(f), 0);
}

static unsigned char *read_whole(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *d = malloc(*len + 1);
  if (fread(d, 1, *len, f) != *len) {
    free(d);
    d = NULL;
  }
  fclose(f);
  return d;
}

/* Opening path must fail with code and one line holding both needles. */
static void assert_refused(const char *path, int code, const char *needle1, const char *needle2) {
  safet_model *m = NULL;
  char *err = NULL;
  int rc = safet_model_open(path, &m, &err);
  CU_ASSERT_EQUAL(rc, code);
  CU_ASSERT_PTR_NULL(m);
  CU_ASSERT_TRUE(fixture_contains(err, needle1));
  CU_ASSERT_TRUE(fixture_contains(err, needle2));
  CU_ASSERT_FALSE(fixture_contains(err, "\n"));
  if (rc != code || !fixture_contains(err, needle1) || !fixture_contains(err, needle2))
    fprintf(stderr, "\n  wanted %s '%s' '%s', got %s: %s\n", status_name(code), needle1, needle2, status_name(rc),
            err ? err : "(none)");
  free(err);
  safet_model_close(m);
}

static float from_bits(uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

static uint32_t to_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

static void test_f32_round_trip_is_bit_identical(void) {
  char *path = fresh_path("model.safetensors");
  float a[6], b[24], c[3] = {from_bits(0x7fc00123u), from_bits(0x80000000u), from_bits(0x00000001u)};
  for (int i = 0; i < 6; i++) a[i] = fixture_value(1, (size_t)i);
  for (int i = 0; i < 24; i++) b[i] = fixture_value(2, (size_t)i);
  b[0] = INFINITY;
  b[1] = from_bits(0x7f7fffffu);
  safet_tensor t[3] = {{"bert.embeddings.word_embeddings.weight", 2, {2, 3}, a},
                       {"bert.encoder.layer.0.intermediate.dense.weight", 3, {2, 3, 4}, b},
                       {"cls.predictions.bias", 1, {3}, c}};
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(safet_write(path, t, 3, SAFET_F32, &err), ST_OK);
  safet_model *m = NULL;
  CU_ASSERT_EQUAL_FATAL(safet_model_open(path, &m, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(safet_model_count(m), 3);
  for (size_t i = 0; i < 3; i++) {
    const safet_info *info = safet_model_info(m, i);
    CU_ASSERT_STRING_EQUAL(info->name, t[i].name); /* in the order given */
    CU_ASSERT_EQUAL(info->dtype, SAFET_F32);
    CU_ASSERT_EQUAL(info->ndim, t[i].ndim);
    CU_ASSERT_EQUAL(memcmp(info->shape, t[i].shape, (size_t)t[i].ndim * sizeof(size_t)), 0);
    CU_ASSERT_EQUAL(safet_model_find(m, t[i].name), (long)i);
    float back[24];
    CU_ASSERT_EQUAL(safet_model_read_f32(m, i, back, &err), ST_OK);
    CU_ASSERT_EQUAL(memcmp(back, t[i].data, info->count * sizeof(float)), 0);
  }
  CU_ASSERT_EQUAL(safet_model_find(m, "bert.pooler.dense.weight"), -1);
  CU_ASSERT_PTR_NULL(err);
  safet_model_close(m);
  cleanup(path);
}

static void test_header_is_padded_aligned_and_says_format_pt(void) {
  char *path = fresh_path("x.safetensors");
  float a[3] = {1, 2, 3}, b[1] = {4};
  /* Name lengths chosen so that the unpadded header is not a multiple of 8. */
  safet_tensor t[2] = {{"b", 1, {3}, a}, {"a\"q", 1, {1}, b}};
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(safet_write(path, t, 2, SAFET_BF16, &err), ST_OK);
  size_t len = 0;
  unsigned char *d = read_whole(path, &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | d[i];
  CU_ASSERT_EQUAL(n % 8, 0);
  CU_ASSERT_EQUAL(len, 8 + n + 4 * 2); /* data back to back, nothing after */
  /* BF16 of 1, 2, 3, 4 */
  const unsigned char want[8] = {0x80, 0x3f, 0x00, 0x40, 0x40, 0x40, 0x80, 0x40};
  CU_ASSERT_EQUAL(memcmp(d + 8 + n, want, 8), 0);
  d[8 + n] = '\0';
  const char *h = (const char *)d + 8;
  CU_ASSERT_TRUE(fixture_contains(h, "\"__metadata__\":{\"format\":\"pt\"}"));
  CU_ASSERT_TRUE(fixture_contains(h, "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]}"));
  CU_ASSERT_TRUE(fixture_contains(h, "\"a\\\"q\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[6,8]}"));
  const char *close = strrchr(h, '}');
  CU_ASSERT_TRUE(close && strspn(close + 1, " ") == strlen(close + 1) && strlen(close + 1) > 0);
  free(d);
  safet_model *m = NULL;
  CU_ASSERT_EQUAL_FATAL(safet_model_open(path, &m, &err), ST_OK);
  CU_ASSERT_STRING_EQUAL(safet_model_info(m, 1)->name, "a\"q");
  safet_model_close(m);
  cleanup(path);
}

/* Writes x as one tensor in dtype and returns the stored 16-bit patterns
 * and, through back, the values read back. */
static int narrow(const float *x, size_t n, safet_dtype dtype, uint16_t *bits, float *back, char **err) {
  char *path = fresh_path("n.safetensors");
  safet_tensor t = {"cls.predictions.bias", 1, {n}, x};
  int rc = safet_write(path, &t, 1, dtype, err);
  if (rc == ST_OK) {
    size_t len = 0;
    unsigned char *d = read_whole(path, &len);
    memcpy(bits, d + len - 2 * n, 2 * n);
    free(d);
    safet_model *m = NULL;
    rc = safet_model_open(path, &m, err);
    if (rc == ST_OK) rc = safet_model_read_f32(m, 0, back, err);
    safet_model_close(m);
  }
  cleanup(path);
  return rc;
}

static void test_bf16_rounds_to_nearest_even_and_keeps_nan(void) {
  static const uint32_t in[] = {0x3f800000u, 0x3f808000u, 0x3f818000u, 0x3f808001u, 0x3f807fffu, 0xbf818000u,
                                0x7f7fffffu, 0x80000000u, 0x00018000u, 0x7f800000u, 0x7fc00000u, 0x7f800001u};
  static const uint16_t want[] = {0x3f80, 0x3f80, 0x3f82, 0x3f81, 0x3f80, 0xbf82,
                                  0x7f80, 0x8000, 0x0002, 0x7f80, 0x7fc0, 0x7fc0};
  enum { N = sizeof in / sizeof in[0] };
  float x[N], back[N];
  uint16_t bits[N];
  for (int i = 0; i < N; i++) x[i] = from_bits(in[i]);
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(narrow(x, N, SAFET_BF16, bits, back, &err), ST_OK);
  for (int i = 0; i < N; i++) {
    CU_ASSERT_EQUAL(bits[i], want[i]);
    CU_ASSERT_EQUAL(to_bits(back[i]), (uint32_t)want[i] << 16);
  }
  CU_ASSERT_TRUE(isnan(back[N - 1])); /* a low-payload NaN must not become inf */
}

static void test_f16_rounds_to_nearest_even_through_subnormals(void) {
  static const uint32_t in[] = {
      0x3f800000u, /* 1 */
      0x477fe000u, /* 65504, the largest */
      0x477fef00u, /* 65519: below the midpoint, down */
      0x3f801000u, /* 1 + 2^-11: tie, to even 1 */
      0x3f803000u, /* 1 + 3 * 2^-11: tie, to even 1 + 2^-9 */
      0x38800000u, /* 2^-14, the smallest normal */
      0x33800000u, /* 2^-24, the smallest subnormal */
      0x33000000u, /* 2^-25: tie, to even 0 */
      0x33000001u, /* just above 2^-25: up */
      0x33c00000u, /* 1.5 * 2^-24: tie, to even 2 * 2^-24 */
      0x34200000u, /* 2.5 * 2^-24: tie, to even 2 * 2^-24 */
      0x387fc000u, /* 1023 * 2^-24, the largest subnormal */
      0x387fe000u, /* 1023.5 * 2^-24: tie, up into the smallest normal */
      0x80000000u, /* -0 */
      0xff800000u, /* -inf */
      0xc0490fdbu, /* -pi */
  };
  static const uint16_t want[] = {0x3c00, 0x7bff, 0x7bff, 0x3c00, 0x3c02, 0x0400, 0x0001, 0x0000,
                                  0x0001, 0x0002, 0x0002, 0x03ff, 0x0400, 0x8000, 0xfc00, 0xc248};
  enum { N = sizeof in / sizeof in[0] };
  float x[N + 1], back[N + 1];
  uint16_t bits[N + 1];
  for (int i = 0; i < N; i++) x[i] = from_bits(in[i]);
  x[N] = from_bits(0x7f800001u); /* NaN whose payload sits below F16's bits */
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(narrow(x, N + 1, SAFET_F16, bits, back, &err), ST_OK);
  for (int i = 0; i < N; i++) {
    CU_ASSERT_EQUAL(bits[i], want[i]);
    if (bits[i] != want[i]) fprintf(stderr, "\n  f16 of %08x: %04x, want %04x\n", in[i], bits[i], want[i]);
  }
  CU_ASSERT_TRUE((bits[N] & 0x7c00) == 0x7c00 && (bits[N] & 0x3ff) != 0);
  CU_ASSERT_TRUE(isnan(back[N]));
  CU_ASSERT_EQUAL(back[6], ldexpf(1, -24));
  CU_ASSERT_EQUAL(back[11], ldexpf(1023, -24));
  CU_ASSERT_EQUAL(back[1], 65504.0f);
}

static void test_f16_overflow_fails_naming_tensor_and_keeps_old_file(void) {
  char *path = fresh_path("model.safetensors");
  float ok[2] = {1, 2}, big[3] = {0, 65520.0f, 1};
  safet_tensor t[2] = {{"bert.pooler.dense.bias", 1, {2}, ok}, {"cls.predictions.bias", 1, {3}, big}};
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(safet_write(path, t, 1, SAFET_F16, &err), ST_OK);
  size_t before = 0, after = 0;
  unsigned char *old = read_whole(path, &before);
  CU_ASSERT_EQUAL(safet_write(path, t, 2, SAFET_F16, &err), ST_INVALID);
  CU_ASSERT_TRUE(fixture_contains(err, "'cls.predictions.bias'"));
  CU_ASSERT_TRUE(fixture_contains(err, "element 1"));
  CU_ASSERT_TRUE(fixture_contains(err, "65504"));
  unsigned char *now = read_whole(path, &after);
  CU_ASSERT_TRUE(before == after && old && now && memcmp(old, now, after) == 0);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, "*"), 1);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, ".*.tmp-*"), 0); /* no temporary left */
  free(err);
  free(old);
  free(now);
  /* BF16 holds it. */
  err = NULL;
  CU_ASSERT_EQUAL(safet_write(path, t, 2, SAFET_BF16, &err), ST_OK);
  cleanup(path);
}

static void test_write_refuses_duplicate_names_and_integer_dtypes(void) {
  char *path = fresh_path("model.safetensors");
  float a[2] = {1, 2};
  safet_tensor t[3] = {{"x", 1, {2}, a}, {"y", 1, {2}, a}, {"x", 1, {2}, a}};
  char *err = NULL;
  CU_ASSERT_EQUAL(safet_write(path, t, 3, SAFET_F32, &err), ST_INVALID);
  CU_ASSERT_TRUE(fixture_contains(err, "'x'"));
  free(err);
  err = NULL;
  CU_ASSERT_EQUAL(safet_write(path, t, 2, SAFET_I64, &err), ST_INVALID);
  CU_ASSERT_TRUE(fixture_contains(err, "I64"));
  free(err);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, "*"), 0);
  CU_ASSERT_EQUAL(fixture_count_matching(dir, ".*.tmp-*"), 0);
  cleanup(path);
}

/* Every 16-bit pattern widens to the value the format defines, computed
 * here from sign, exponent and mantissa. */
static void test_every_f16_and_bf16_value_widens_exactly(void) {
  char *path = fresh_path("all.safetensors");
  write_raw(path,
            "{\"h\":{\"dtype\":\"F16\",\"shape\":[65536],\"data_offsets\":[0,131072]},"
            "\"b\":{\"dtype\":\"BF16\",\"shape\":[256,256],\"data_offsets\":[131072,262144]}}",
            0);
  FILE *f = fopen(path, "ab");
  for (int k = 0; k < 2; k++)
    for (uint32_t v = 0; v < 65536; v++) {
      uint16_t h = (uint16_t)v;
      fwrite(&h, 2, 1, f);
    }
  fclose(f);
  safet_model *m = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(safet_model_open(path, &m, &err), ST_OK);
  float *x = malloc(65536 * sizeof *x);
  long h = safet_model_find(m, "h"), b = safet_model_find(m, "b");
  CU_ASSERT_EQUAL_FATAL(safet_model_read_f32(m, (size_t)h, x, &err), ST_OK);
  int bad = 0;
  for (uint32_t v = 0; v < 65536; v++) {
    int s = v >> 15, e = (int)(v >> 10 & 31), mant = (int)(v & 1023);
    float want = e == 0    ? ldexpf((float)mant, -24)
                 : e < 31 ? ldexpf(1024.0f + (float)mant, e - 25)
                          : (mant ? NAN : INFINITY);
    if (s) want = -want;
    if (isnan(want) ? !isnan(x[v]) : to_bits(x[v]) != to_bits(want)) bad++;
  }
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT_EQUAL_FATAL(safet_model_read_f32(m, (size_t)b, x, &err), ST_OK);
  for (uint32_t v = 0; v < 65536; v++)
    if (to_bits(x[v]) != v << 16) bad++;
  CU_ASSERT_EQUAL(bad, 0);
  free(x);
  safet_model_close(m);
  cleanup(path);
}

static void test_scalars_empty_and_integer_tensors_are_listed(void) {
  char *path = fresh_path("model.safetensors");
  write_raw(path,
            "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"x\"},"
            "\"e\":{\"dtype\":\"F32\",\"shape\":[0,768],\"data_offsets\":[4,4]},"
            "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
            "\"bert.embeddings.position_ids\":{\"dtype\":\"I64\",\"shape\":[1,2],\"data_offsets\":[4,20]}}",
            20);
  safet_model *m = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(safet_model_open(path, &m, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(safet_model_count(m), 3);
  /* File order of the data, not of the header. */
  CU_ASSERT_STRING_EQUAL(safet_model_info(m, 0)->name, "s");
  CU_ASSERT_EQUAL(safet_model_info(m, 0)->ndim, 0);
  CU_ASSERT_EQUAL(safet_model_info(m, 0)->count, 1);
  CU_ASSERT_EQUAL(safet_model_info(m, 1)->count, 0);
  long pos = safet_model_find(m, "bert.embeddings.position_ids");
  CU_ASSERT_EQUAL_FATAL(pos, 2);
  CU_ASSERT_EQUAL(safet_model_info(m, 2)->dtype, SAFET_I64);
  float x[4];
  CU_ASSERT_EQUAL(safet_model_read_f32(m, 2, x, &err), ST_INVALID);
  CU_ASSERT_TRUE(fixture_contains(err, "'bert.embeddings.position_ids'"));
  CU_ASSERT_TRUE(fixture_contains(err, "I64"));
  free(err);
  err = NULL;
  CU_ASSERT_EQUAL(safet_model_read_f32(m, 0, x, &err), ST_OK);
  CU_ASSERT_EQUAL(to_bits(x[0]), 0x04030201u);
  safet_model_close(m);
  cleanup(path);
}

typedef struct {
  const char *header;
  size_t data;
  const char *needle1, *needle2;
} bad_file;

static void test_every_header_check_refuses_naming_the_tensor(void) {
  static const bad_file bad[] = {
      {"{\"bert.embeddings.word_embeddings.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,12]}}", 12,
       "model.safetensors: tensor 'bert.embeddings.word_embeddings.weight': data_offsets [0, 12] hold 12 bytes but "
       "shape [2, 3] of F32 needs 24",
       ""},
      {"{\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w'", "F33"},
      {"{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w'", "dtype"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "tensor 'w'", "shape"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "tensor 'w'", "shape"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", 4, "tensor 'w'", "shape"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "tensor 'w'", "9 dim"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "tensor 'w'", "[4, 0]"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "tensor 'w'", "data_offsets"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 'w'", "data_offsets"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}", 4, "tensor 'w'",
       "2^64"},
      {"{\"w\":[1]}", 0, "tensor 'w'", "not a JSON object"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
       12, "tensor 'b'", "gap"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "tensor 'a'", "gap"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
       8, "tensor 'b'", "overlap tensor 'a'"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "tensor 'a'", "run past"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "tensor 'a'", "file size"},
      {"{}", 4, "no tensors", "4 data bytes"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
       8, "tensor 'a'", "twice"},
      {"{\"__metadata__\":[1]}", 0, "__metadata__", "object"},
      {"{\"__metadata__\":{\"format\":1}}", 0, "'format'", "not a string"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4, "header", "after its JSON"},
      {"{\"a\":", 0, "header", "not valid JSON"},
      {"[1, 2]", 0, "header", "not a JSON object"},
      {"{\"a\\nb\":{\"dtype\":\"Q\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'a\\x0ab'", "Q"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    char *path = fresh_path("model.safetensors");
    write_raw(path, bad[k].header, bad[k].data);
    assert_refused(path, ST_CORRUPT, bad[k].needle1, bad[k].needle2);
    assert_refused(path, ST_CORRUPT, path, "");
    cleanup(path);
  }
}

static void test_header_length_beyond_limit_or_file_is_refused(void) {
  char *path = fresh_path("model.safetensors");
  unsigned char head[16] = {0x01, 0xe1, 0xf5, 0x05}; /* 100000001 */
  FILE *f = fopen(path, "wb");
  fwrite(head, 1, sizeof head, f);
  fclose(f);
  assert_refused(path, ST_CORRUPT, "100000001", "limit");
  f = fopen(path, "wb");
  head[0] = 9, head[1] = head[2] = head[3] = 0;
  fwrite(head, 1, sizeof head, f); /* 9 > 16 - 8 */
  fclose(f);
  assert_refused(path, ST_CORRUPT, "header length 9", "past the end");
  f = fopen(path, "wb");
  fwrite(head, 1, 5, f);
  fclose(f);
  assert_refused(path, ST_CORRUPT, path, "too short");
  cleanup(path);
}

static void test_truncated_file_is_refused_before_and_after_open(void) {
  char *path = fresh_path("model.safetensors");
  float a[64] = {0}, b[16] = {0};
  safet_tensor t[2] = {{"bert.pooler.dense.weight", 2, {8, 8}, a}, {"bert.pooler.dense.bias", 1, {16}, b}};
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(safet_write(path, t, 2, SAFET_F32, &err), ST_OK);
  safet_model *m = NULL;
  CU_ASSERT_EQUAL_FATAL(safet_model_open(path, &m, &err), ST_OK);
  struct stat st;
  CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
  CU_ASSERT_EQUAL_FATAL(truncate(path, st.st_size - 4), 0);
  assert_refused(path, ST_CORRUPT, "tensor 'bert.pooler.dense.bias'", "run past");
  float back[64];
  CU_ASSERT_EQUAL(safet_model_read_f32(m, 0, back, &err), ST_CORRUPT);
  CU_ASSERT_TRUE(fixture_contains(err, "changed"));
  free(err);
  safet_model_close(m);
  cleanup(path);
}

static void test_directory_without_model_is_refused(void) {
  char *path = fresh_path("x");
  assert_refused(dir, ST_INVALID, "model.safetensors", "pytorch_model.bin");
  assert_refused(path, ST_IO, path, "cannot open");
  cleanup(path);
}

/* Two shards: (a, b) and (c), with values a = 1, 2; b = 3; c = 4, 5, 6. */
static void write_shards(void) {
  float a[2] = {1, 2}, b[1] = {3}, c[3] = {4, 5, 6};
  safet_tensor s1[2] = {{"a", 1, {2}, a}, {"b", 1, {1}, b}}, s2[1] = {{"c", 1, {3}, c}};
  char *p1 = file_path_join(dir, "model-00001-of-00002.safetensors");
  char *p2 = file_path_join(dir, "model-00002-of-00002.safetensors");
  char *err = NULL;
  CU_ASSERT_EQUAL(safet_write(p2, s2, 1, SAFET_BF16, &err), ST_OK);
  CU_ASSERT_EQUAL(safet_write(p1, s1, 2, SAFET_F32, &err), ST_OK);
  free(p1);
  free(p2);
}

#define SHARD1 "\"model-00001-of-00002.safetensors\""
#define SHARD2 "\"model-00002-of-00002.safetensors\""

static void test_sharded_model_reads_through_its_index(void) {
  char *index = fresh_path("model.safetensors.index.json");
  write_shards();
  CU_ASSERT_EQUAL(fixture_write_text(dir, "model.safetensors.index.json",
                                     "{\"metadata\":{\"total_size\":18},\"weight_map\":{\"c\":" SHARD2
                                     ",\"a\":" SHARD1 ",\"b\":" SHARD1 "}}"),
                  0);
  for (int by_dir = 0; by_dir < 2; by_dir++) {
    safet_model *m = NULL;
    char *err = NULL;
    CU_ASSERT_EQUAL_FATAL(safet_model_open(by_dir ? dir : index, &m, &err), ST_OK);
    CU_ASSERT_EQUAL_FATAL(safet_model_count(m), 3);
    const char *order[3] = {"a", "b", "c"};
    for (size_t i = 0; i < 3; i++) CU_ASSERT_STRING_EQUAL(safet_model_info(m, i)->name, order[i]);
    float x[3];
    CU_ASSERT_EQUAL(safet_model_read_f32(m, (size_t)safet_model_find(m, "c"), x, &err), ST_OK);
    CU_ASSERT_TRUE(x[0] == 4 && x[1] == 5 && x[2] == 6);
    CU_ASSERT_EQUAL(safet_model_read_f32(m, (size_t)safet_model_find(m, "b"), x, &err), ST_OK);
    CU_ASSERT_EQUAL(x[0], 3);
    CU_ASSERT_EQUAL(safet_model_info(m, 2)->dtype, SAFET_BF16);
    safet_model_close(m);
  }
  cleanup(index);
}

static void test_inconsistent_indexes_are_refused(void) {
  static const struct {
    const char *index;
    int code;
    const char *needle1, *needle2;
  } bad[] = {
      {"{\"weight_map\":{\"a\":" SHARD1 ",\"b\":" SHARD2 ",\"c\":" SHARD2 "}}", ST_CORRUPT, "tensor 'b'",
       "puts it in model-00002"},
      {"{\"weight_map\":{\"a\":" SHARD1 ",\"c\":" SHARD2 "}}", ST_CORRUPT, "tensor 'b'", "missing from the index"},
      {"{\"weight_map\":{\"a\":" SHARD1 ",\"b\":" SHARD1 ",\"c\":" SHARD2 ",\"d\":" SHARD2 "}}", ST_CORRUPT,
       "tensor 'd'", "does not hold it"},
      {"{\"weight_map\":{\"a\":" SHARD1 ",\"b\":" SHARD1 ",\"c\":\"../model-00002-of-00002.safetensors\"}}",
       ST_CORRUPT, "tensor 'c'", "file name beside the index"},
      {"{\"weight_map\":{\"a\":" SHARD1 ",\"b\":" SHARD1 ",\"c\":\"model-00003.safetensors\"}}", ST_IO,
       "model-00003.safetensors", "cannot open"},
      {"{\"weight_map\":{\"a\":" SHARD1 ",\"a\":" SHARD1 ",\"b\":" SHARD1 ",\"c\":" SHARD2 "}}", ST_CORRUPT,
       "tensor 'a'", "twice"},
      {"{\"weight_map\":{}}", ST_CORRUPT, "index.json", "no tensors"},
      {"{\"metadata\":{}}", ST_CORRUPT, "index.json", "weight_map"},
      {"{\"weight_map\":", ST_CORRUPT, "index.json", "weight_map"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    char *index = fresh_path("model.safetensors.index.json");
    write_shards();
    CU_ASSERT_EQUAL(fixture_write_text(dir, "model.safetensors.index.json", bad[k].index), 0);
    assert_refused(index, bad[k].code, bad[k].needle1, bad[k].needle2);
    assert_refused(dir, bad[k].code, bad[k].needle1, bad[k].needle2);
    cleanup(index);
  }
}

static void test_damaged_shard_is_refused_through_the_index(void) {
  char *index = fresh_path("model.safetensors.index.json");
  write_shards();
  CU_ASSERT_EQUAL(fixture_write_text(dir, "model.safetensors.index.json",
                                     "{\"weight_map\":{\"a\":" SHARD1 ",\"b\":" SHARD1 ",\"c\":" SHARD2 "}}"),
                  0);
  char *p2 = file_path_join(dir, "model-00002-of-00002.safetensors");
  struct stat st;
  CU_ASSERT_EQUAL_FATAL(stat(p2, &st), 0);
  CU_ASSERT_EQUAL_FATAL(truncate(p2, st.st_size - 2), 0);
  assert_refused(dir, ST_CORRUPT, "model-00002-of-00002.safetensors: tensor 'c'", "run past");
  free(p2);
  cleanup(index);
}

static const harness_test tests[] = {
    {"test_f32_round_trip_is_bit_identical", test_f32_round_trip_is_bit_identical},
    {"test_header_is_padded_aligned_and_says_format_pt", test_header_is_padded_aligned_and_says_format_pt},
    {"test_bf16_rounds_to_nearest_even_and_keeps_nan", test_bf16_rounds_to_nearest_even_and_keeps_nan},
    {"test_f16_rounds_to_nearest_even_through_subnormals", test_f16_rounds_to_nearest_even_through_subnormals},
    {"test_f16_overflow_fails_naming_tensor_and_keeps_old_file", test_f16_overflow_fails_naming_tensor_and_keeps_old_file},
    {"test_write_refuses_duplicate_names_and_integer_dtypes", test_write_refuses_duplicate_names_and_integer_dtypes},
    {"test_every_f16_and_bf16_value_widens_exactly", test_every_f16_and_bf16_value_widens_exactly},
    {"test_scalars_empty_and_integer_tensors_are_listed", test_scalars_empty_and_integer_tensors_are_listed},
    {"test_every_header_check_refuses_naming_the_tensor", test_every_header_check_refuses_naming_the_tensor},
    {"test_header_length_beyond_limit_or_file_is_refused", test_header_length_beyond_limit_or_file_is_refused},
    {"test_truncated_file_is_refused_before_and_after_open", test_truncated_file_is_refused_before_and_after_open},
    {"test_directory_without_model_is_refused", test_directory_without_model_is_refused},
    {"test_sharded_model_reads_through_its_index", test_sharded_model_reads_through_its_index},
    {"test_inconsistent_indexes_are_refused", test_inconsistent_indexes_are_refused},
    {"test_damaged_shard_is_refused_through_the_index", test_damaged_shard_is_refused_through_the_index},
    {NULL, NULL},
};
const harness_suite storage_safetensors_suite = {"safetensors", tests};
