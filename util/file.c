/* Atomic small-file replacement and line filtering (see file.h). */
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int file_write_atomic(const char *path, const void *data, size_t len, char **err) {
  const char *slash = strrchr(path, '/');
  size_t dirlen = slash ? (size_t)(slash - path) : 0;
  const char *name = slash ? slash + 1 : path;
  size_t n = strlen(path) + 40;
  char *tmp = malloc(n), *dir = malloc(dirlen + 2);
  int fd = -1, rc = ST_OK;
  const char *step = "create";
  if (!tmp || !dir) {
    rc = status_set(err, ST_NOMEM, "out of memory writing %s", path);
    goto done;
  }
  if (slash) {
    memcpy(dir, path, dirlen ? dirlen : 1); /* "/name" lives in "/" */
    dir[dirlen ? dirlen : 1] = '\0';
  } else {
    strcpy(dir, ".");
  }
  snprintf(tmp, n, "%.*s%s.%s.tmp-%ld", (int)dirlen, path, slash ? "/" : "", name, (long)getpid());
  if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) goto fail;
  step = "write";
  for (size_t off = 0; off < len;) {
    ssize_t w = write(fd, (const char *)data + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) goto fail;
    off += (size_t)w;
  }
  step = "fsync";
  if (fsync(fd) != 0) goto fail;
  step = "close";
  int f = fd;
  fd = -1;
  if (close(f) != 0) goto fail;
  step = "rename into place";
  if (rename(tmp, path) != 0) goto fail;
  rc = file_fsync_dir(dir, err);
  goto done;
fail:
  rc = status_set(err, ST_IO, "%s: cannot %s: %s", tmp, step, strerror(errno));
  if (fd >= 0) close(fd);
  unlink(tmp);
done:
  free(tmp);
  free(dir);
  return rc;
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
