/* Files written safely: whole-file atomic replacement (temp, fsync, rename,
 * directory fsync), from memory or streamed, and line filtering through the
 * same path. Used for manifest.json, LATEST, config.ini, state files, the
 * run's logs and ddpt tokenize --out. */
#ifndef DDPT_UTIL_FILE_H
#define DDPT_UTIL_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Replaces path with len bytes of data: written to "<dir>/.<name>.tmp-<pid>",
 * fsynced, renamed over path, then the directory is fsynced. A reader sees
 * the old file or the new one, never part of one. On failure the temporary
 * is removed, path is untouched, and *err names the step that failed. */
int file_write_atomic(const char *path, const void *data, size_t len, char **err);

/* The same replacement for output too large to hold in memory (ddpt
 * tokenize): open creates the temporary, write appends to it (one write(2)
 * or more per call: buffer small pieces yourself), commit fsyncs, renames
 * and fsyncs the directory. Until commit, path is untouched. commit frees f
 * whatever its outcome; abort removes the temporary and frees f. */
typedef struct file_atomic file_atomic;
int file_atomic_open(const char *path, file_atomic **out, char **err);
int file_atomic_write(file_atomic *f, const void *data, size_t len, char **err);
int file_atomic_commit(file_atomic *f, char **err);
void file_atomic_abort(file_atomic *f); /* NULL is a no-op */

/* "dir/name" in a malloc'd string the caller frees (one slash between the
 * two, whatever dir ends with); NULL when out of memory. Paths are never
 * cut to fit a fixed buffer. */
char *file_path_join(const char *dir, const char *name);

/* Reads the whole of path into a malloc'd buffer (caller frees) with a
 * terminating NUL after its *len bytes. Files larger than max bytes fail
 * (ST_INVALID, naming the file and the limit). */
int file_read_all(const char *path, size_t max, char **data, size_t *len, char **err);

/* Reads n bytes at offset off of fd (path names it in messages), retrying
 * short reads; ST_CORRUPT when the file ends first, ST_IO on a failed read. */
int file_read_at(int fd, void *buf, size_t n, uint64_t off, const char *path, char **err);

/* Creates directory path and any missing parents, as `mkdir -p` does (an
 * existing directory is fine). Returns 0, or -1 with errno set. */
int file_mkdirs(const char *path);

/* Makes renames in dir durable. */
int file_fsync_dir(const char *dir, char **err);

/* Keeps the lines of path (each with its newline) for which keep returns
 * nonzero and replaces the file atomically. A missing path is ST_OK. */
int file_filter_lines(const char *path, int (*keep)(const char *line, void *ctx), void *ctx, char **err);

#endif
