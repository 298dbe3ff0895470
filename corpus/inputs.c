/* Listing a command's input text files (see inputs.h): a depth-first walk in
 * byte order of names that skips dot-entries inside directories. */
#include "corpus/inputs.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/array.h"
#include "util/file.h"
#include "util/status.h"

typedef struct walk {
  corpus_inputs *out;
  size_t cap;
  int streams;
  const char *output;
  struct stat output_st; /* valid when output exists */
  int output_exists;
} walk;

static int walk_push(walk *w, const char *path, uint64_t bytes, char **err) {
  corpus_inputs *in = w->out;
  if (array_grow(&in->paths, &w->cap, in->n + 1, sizeof *in->paths) != ST_OK ||
      !(in->paths[in->n] = strdup(path)))
    return status_set(err, ST_NOMEM, "out of memory listing inputs");
  in->n++;
  in->total_bytes += bytes;
  return ST_OK;
}

static int not_hidden(const struct dirent *e) { return e->d_name[0] != '.'; }

static int by_name(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

static int walk_path(walk *w, const char *path, int named, char **err);

static int walk_dir(walk *w, const char *dir, char **err) {
  struct dirent **entries = NULL;
  int n = scandir(dir, &entries, not_hidden, by_name);
  if (n < 0)
    return status_set(err, ST_IO, "cannot list input directory %s: %s", dir, strerror(errno));
  int rc = ST_OK;
  for (int i = 0; i < n; i++) {
    if (!rc) {
      char *child = file_path_join(dir, entries[i]->d_name);
      rc = child ? walk_path(w, child, 0, err)
                 : status_set(err, ST_NOMEM, "out of memory listing input directory %s", dir);
      free(child);
    }
    free(entries[i]);
  }
  free(entries);
  return rc;
}

/* named: the user gave this path (rules 1 and 5); else it was found in a
 * directory (rule 3). */
static int walk_path(walk *w, const char *path, int named, char **err) {
  if (named && strcmp(path, "-") == 0) {
    if (w->streams) return walk_push(w, path, 0, err);
    return status_set(err, ST_INVALID, "standard input (-) cannot be an input here: the inputs are "
                      "read twice; name files or directories");
  }
  struct stat st;
  if (stat(path, &st) != 0)
    return status_set(err, ST_IO, "input %s: %s; check the path", path, strerror(errno));
  if (w->output_exists && st.st_dev == w->output_st.st_dev && st.st_ino == w->output_st.st_ino)
    return status_set(err, ST_INVALID, "the output %s is among the inputs (as %s): choose an "
                      "output outside them", w->output, path);
  if (S_ISREG(st.st_mode)) return walk_push(w, path, (uint64_t)st.st_size, err);
  if (S_ISDIR(st.st_mode)) return walk_dir(w, path, err);
  if (!named) return ST_OK;
  if (w->streams) return walk_push(w, path, 0, err);
  return status_set(err, ST_INVALID, "input %s is not a regular file or directory, and the inputs "
                    "are read twice here: save it to a file", path);
}

int corpus_inputs_list(corpus_inputs *out, const char *const *paths, size_t num_paths, int streams,
                       const char *output, char **err) {
  memset(out, 0, sizeof *out);
  walk w = {.out = out, .streams = streams, .output = output};
  w.output_exists = output && stat(output, &w.output_st) == 0;
  int rc = ST_OK;
  for (size_t i = 0; i < num_paths && !rc; i++) rc = walk_path(&w, paths[i], 1, err);
  if (!rc && out->n == 0)
    rc = status_set(err, ST_INVALID, "no input files in %s%s (names starting with '.' are "
                    "skipped)", num_paths ? paths[0] : "the inputs",
                    num_paths > 1 ? " and the other inputs" : "");
  return rc;
}

void corpus_inputs_free(corpus_inputs *in) {
  for (size_t i = 0; i < in->n; i++) free(in->paths[i]);
  free(in->paths);
  memset(in, 0, sizeof *in);
}
