/* Atomic file replacement, whole or streamed, and line filtering (see file.h). */
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/status.h"

char *file_path_join(const char *dir, const char *name) {
  size_t dlen = strlen(dir), nlen = strlen(name);
  int slash = dlen > 0 && dir[dlen - 1] != '/';
  char *path = malloc(dlen + (size_t)slash + nlen + 1);
  if (!path) return NULL;
  memcpy(path, dir, dlen);
  if (slash) path[dlen] = '/';
  memcpy(path + dlen + slash, name, nlen + 1);
  return path;
}

int file_read_at(int fd, void *buf, size_t n, uint64_t off, const char *path, char **err) {
  uint8_t *p = buf;
  for (size_t got = 0; got < n;) {
    ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return status_set(err, ST_IO, "%s: read failed: %s", path, strerror(errno));
    if (r == 0)
      return status_set(err, ST_CORRUPT, "%s: ends at byte %llu, before %llu: truncated", path,
                        (unsigned long long)(off + got), (unsigned long long)(off + n));
    got += (size_t)r;
  }
  return ST_OK;
}

int file_mkdirs(const char *path) {
  size_t n = strlen(path);
  char *p = malloc(n + 1);
  if (!p) return errno = ENOMEM, -1;
  memcpy(p, path, n + 1);
  /* Each prefix that ends before a '/' (but not the root's), then the whole. */
  for (size_t i = 1; i <= n; i++) {
    if (i < n && p[i] != '/') continue;
    p[i] = '\0';
    int ok = mkdir(p, 0777) == 0 || errno == EEXIST;
    if (i < n) p[i] = '/';
    if (!ok) return free(p), -1;
  }
  free(p);
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  if (!S_ISDIR(st.st_mode)) return errno = ENOTDIR, -1;
  return 0;
}

int file_fsync_dir(const char *dir, char **err) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return status_set(err, ST_IO, "%s: cannot open directory to fsync: %s", dir, strerror(errno));
  if (fsync(fd) != 0) {
    int e = errno;
    close(fd);
    return status_set(err, ST_IO, "%s: directory fsync failed: %s", dir, strerror(e));
  }
  close(fd);
  return ST_OK;
}

struct file_atomic {
  int fd; /* -1 once closed */
  char *path, *tmp, *dir;
};

static void file_atomic_free(file_atomic *f) {
  free(f->path);
  free(f->tmp);
  free(f->dir);
  free(f);
}

void file_atomic_abort(file_atomic *f) {
  if (!f) return;
  if (f->fd >= 0) close(f->fd);
  unlink(f->tmp);
  file_atomic_free(f);
}

int file_atomic_open(const char *path, file_atomic **out, char **err) {
  const char *slash = strrchr(path, '/');
  size_t dirlen = slash ? (size_t)(slash - path) : 0;
  const char *name = slash ? slash + 1 : path;
  size_t n = strlen(path) + 40;
  file_atomic *f = calloc(1, sizeof *f);
  if (!f) return status_set(err, ST_NOMEM, "out of memory writing %s", path);
  f->fd = -1;
  f->path = strdup(path);
  f->tmp = malloc(n);
  f->dir = malloc(dirlen + 2);
  if (!f->path || !f->tmp || !f->dir) {
    file_atomic_free(f);
    return status_set(err, ST_NOMEM, "out of memory writing %s", path);
  }
  if (slash) {
    memcpy(f->dir, path, dirlen ? dirlen : 1); /* "/name" lives in "/" */
    f->dir[dirlen ? dirlen : 1] = '\0';
  } else {
    strcpy(f->dir, ".");
  }
  snprintf(f->tmp, n, "%.*s%s.%s.tmp-%ld", (int)dirlen, path, slash ? "/" : "", name, (long)getpid());
  f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (f->fd < 0) {
    int rc = status_set(err, ST_IO, "%s: cannot create: %s", f->tmp, strerror(errno));
    file_atomic_free(f);
    return rc;
  }
  *out = f;
  return ST_OK;
}

int file_atomic_write(file_atomic *f, const void *data, size_t len, char **err) {
  for (size_t off = 0; off < len;) {
    ssize_t w = write(f->fd, (const char *)data + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return status_set(err, ST_IO, "%s: cannot write: %s", f->tmp, strerror(errno));
    off += (size_t)w;
  }
  return ST_OK;
}

int file_atomic_commit(file_atomic *f, char **err) {
  const char *step = "fsync";
  int fd = f->fd, rc;
  if (fsync(fd) != 0) goto fail;
  step = "close";
  f->fd = -1;
  if (close(fd) != 0) goto fail;
  step = "rename into place";
  if (rename(f->tmp, f->path) != 0) goto fail;
  rc = file_fsync_dir(f->dir, err);
  file_atomic_free(f);
  return rc;
fail:
  rc = status_set(err, ST_IO, "%s: cannot %s: %s", f->tmp, step, strerror(errno));
  file_atomic_abort(f);
  return rc;
}

int file_write_atomic(const char *path, const void *data, size_t len, char **err) {
  file_atomic *f = NULL;
  int rc = file_atomic_open(path, &f, err);
  if (rc == ST_OK) rc = file_atomic_write(f, data, len, err);
  if (rc != ST_OK) {
    file_atomic_abort(f);
    return rc;
  }
  return file_atomic_commit(f, err);
}

int file_read_all(const char *path, size_t max, char **data, size_t *len, char **err) {
  FILE *f = fopen(path, "rb");
  if (!f) return status_set(err, ST_IO, "cannot open %s: %s", path, strerror(errno));
  char *buf = NULL;
  size_t n = 0, cap = 0;
  int rc = ST_OK;
  for (;;) {
    if (cap - n < 65536) {
      cap = cap ? 2 * cap : 65536;
      char *grown = realloc(buf, cap + 1);
      if (!grown) {
        rc = status_set(err, ST_NOMEM, "out of memory reading %s", path);
        break;
      }
      buf = grown;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (n > max) {
      rc = status_set(err, ST_INVALID, "%s is larger than %zu bytes; is it the right file?", path, max);
      break;
    }
    if (got == 0) {
      if (ferror(f)) rc = status_set(err, ST_IO, "cannot read %s: %s", path, strerror(errno));
      break;
    }
  }
  fclose(f);
  if (rc) {
    free(buf);
    return rc;
  }
  buf[n] = '\0';
  *data = buf;
  *len = n;
  return ST_OK;
}

int file_filter_lines(const char *path, int (*keep)(const char *line, void *ctx), void *ctx, char **err) {
  FILE *in = fopen(path, "r");
  if (!in) return errno == ENOENT ? ST_OK : status_set(err, ST_IO, "cannot read %s: %s", path, strerror(errno));
  char *kept = NULL, *line = NULL;
  size_t kept_len = 0, cap = 0;
  FILE *out = open_memstream(&kept, &kept_len);
  int rc = ST_OK;
  if (!out) {
    rc = status_set(err, ST_NOMEM, "out of memory filtering %s", path);
  } else {
    while (getline(&line, &cap, in) > 0)
      if (keep(line, ctx)) fputs(line, out);
    if (ferror(in)) rc = status_set(err, ST_IO, "cannot read %s: %s", path, strerror(errno));
    if (fclose(out) != 0 && rc == ST_OK) rc = status_set(err, ST_NOMEM, "out of memory filtering %s", path);
  }
  fclose(in);
  free(line);
  if (rc == ST_OK) rc = file_write_atomic(path, kept ? kept : "", kept_len, err);
  free(kept);
  return rc;
}
