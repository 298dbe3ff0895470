/* SHA-256 through OpenSSL's libcrypto (EVP): vocab and manifest hashes,
 * config hashes compared across ranks. */
#ifndef DDPT_UTIL_SHA256_H
#define DDPT_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct sha256_ctx sha256_ctx;

/* Streaming interface. sha256_begin returns NULL only when out of memory. */
sha256_ctx *sha256_begin(void);
void sha256_update(sha256_ctx *ctx, const void *data, size_t len);
/* Writes the digest and frees ctx. */
void sha256_end(sha256_ctx *ctx, uint8_t digest[32]);

/* One-shot digest of a buffer. */
void sha256(const void *data, size_t len, uint8_t digest[32]);
/* Digest of a file's bytes; ST_IO with the path in *err if unreadable. */
int sha256_file(const char *path, uint8_t digest[32], char **err);
/* Lower-case hex, NUL-terminated (65 bytes). */
void sha256_hex(const uint8_t digest[32], char hex[65]);

#endif
