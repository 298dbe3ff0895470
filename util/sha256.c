/* SHA-256 via OpenSSL EVP (see sha256.h). */
#include "util/sha256.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util/status.h"

struct sha256_ctx {
  EVP_MD_CTX *md;
};

sha256_ctx *sha256_begin(void) {
  sha256_ctx *ctx = malloc(sizeof *ctx);
  if (!ctx) return NULL;
  ctx->md = EVP_MD_CTX_new();
  if (!ctx->md || EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(ctx->md);
    free(ctx);
    return NULL;
  }
  return ctx;
}

void sha256_update(sha256_ctx *ctx, const void *data, size_t len) {
  int ok = EVP_DigestUpdate(ctx->md, data, len);
  assert(ok == 1);
  (void)ok;
}

void sha256_end(sha256_ctx *ctx, uint8_t digest[32]) {
  unsigned n = 0;
  int ok = EVP_DigestFinal_ex(ctx->md, digest, &n);
  assert(ok == 1 && n == 32);
  (void)ok;
  EVP_MD_CTX_free(ctx->md);
  free(ctx);
}

void sha256(const void *data, size_t len, uint8_t digest[32]) {
  unsigned n = 0;
  int ok = EVP_Digest(data, len, digest, &n, EVP_sha256(), NULL);
  assert(ok == 1 && n == 32);
  (void)ok;
}

int sha256_file(const char *path, uint8_t digest[32], char **err) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return status_set(err, ST_IO, "cannot open %s: %s", path, strerror(errno));
  sha256_ctx *ctx = sha256_begin();
  if (!ctx) {
    fclose(f);
    return status_set(err, ST_NOMEM, "out of memory hashing %s", path);
  }
  unsigned char buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) sha256_update(ctx, buf, n);
  int failed = ferror(f);
  int saved = errno;
  fclose(f);
  sha256_end(ctx, digest);
  if (failed)
    return status_set(err, ST_IO, "cannot read %s: %s", path, strerror(saved));
  return ST_OK;
}

void sha256_hex(const uint8_t digest[32], char hex[65]) {
  static const char k[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    hex[2 * i] = k[digest[i] >> 4];
    hex[2 * i + 1] = k[digest[i] & 15];
  }
  hex[64] = '\0';
}
