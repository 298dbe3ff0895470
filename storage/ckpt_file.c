/* One checkpoint file through HDF5: writing a ckpt_content, listing and
 * reading datasets, loading tensors by name, and the whole-file verify.
 * HDF5's own error printing is off; its innermost message ends our lines. */
#define _GNU_SOURCE /* fallocate(2) */
#include "storage/ckpt.h"

#include <assert.h>
#include <math.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <hdf5.h>

#include "ddpt_version.h"
#include "util/file.h"
#include "util/size.h"
#include "util/status.h"

/* Fletcher-32 covers one chunk; small chunks localise damage and keep the
 * read-modify cost of a chunk low, large ones cut per-chunk overhead. */
enum { CHUNK_BYTES = 1 << 20 };
/* ckpt_file_verify reads tensors this many floats (4 MiB) at a time. */
enum { VERIFY_PIECE = 1 << 20 };

struct ckpt_file {
  hid_t id;
  char *path;
};

/* Error stacks (and their printing) are per thread in a thread-safe HDF5,
 * so every entry point silences the calling thread's stack. */
static void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

typedef struct {
  char *buf;
  size_t size;
  int got;
} h5_walk;

static herr_t h5_take_innermost(unsigned n, const H5E_error2_t *e, void *data) {
  (void)n;
  h5_walk *w = data;
  if (!w->got && e->desc && *e->desc) {
    snprintf(w->buf, w->size, "%s", e->desc);
    w->got = 1;
  }
  return 0;
}

/* The most specific message on the thread's HDF5 error stack (where the
 * error was detected, e.g. "data error detected by Fletcher32 checksum"),
 * then clears the stack. */
static const char *h5_reason(char *buf, size_t size) {
  h5_walk w = {buf, size, 0};
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_take_innermost, &w);
  H5Eclear2(H5E_DEFAULT);
  if (!w.got) snprintf(buf, size, "HDF5 error");
  return buf;
}

static int name_is_valid(const char *name) {
  return name && *name && !strchr(name, '/') && strcmp(name, ".") != 0;
}

static void format_shape(char *buf, size_t size, int ndim, const size_t *shape) {
  size_t at = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < ndim && at < size; i++)
    at += (size_t)snprintf(buf + at, size - at, i ? ", %zu" : "%zu", shape[i]);
  if (at < size) snprintf(buf + at, size - at, "]");
}

static int shape_is_valid(int ndim, const size_t *shape) {
  if (ndim < 1 || ndim > CKPT_NDIM_MAX) return 0;
  for (int i = 0; i < ndim; i++)
    if (shape[i] == 0) return 0;
  return 1;
}

/* Whole trailing dimensions and as many leading indices as fit CHUNK_BYTES;
 * a dimension is split only when one index of it alone is too large. The
 * split is even: HDF5 stores edge chunks at full size, so 768 rows in
 * chunks of 341 would waste a third of the space; three chunks of 256 none. */
static void chunk_dims(int ndim, const hsize_t *dims, size_t elem, hsize_t *chunk) {
  for (int i = 0; i < ndim; i++) chunk[i] = dims[i];
  for (int i = 0; i < ndim; i++) {
    hsize_t rest = elem;
    for (int j = i + 1; j < ndim; j++) rest *= chunk[j];
    hsize_t fit = CHUNK_BYTES / rest;
    if (fit >= 1) {
      if (fit < dims[i]) {
        hsize_t pieces = (dims[i] + fit - 1) / fit;
        chunk[i] = (dims[i] + pieces - 1) / pieces;
      }
      return;
    }
    chunk[i] = 1;
  }
}

/* ----------------------------------------------------------------- writing */

static int write_dataset(hid_t loc, const char *name, hid_t filetype, hid_t memtype, size_t elem,
                         int ndim, const size_t *shape, const void *data, const char *file,
                         const char *shown, char **err) {
  char why[256];
  hid_t space = -1, dcpl = -1, dset = -1;
  hsize_t dims[CKPT_NDIM_MAX], chunk[CKPT_NDIM_MAX];
  if (!shape_is_valid(ndim, shape))
    return status_set(err, ST_INVALID, "%s: %s: shape must have 1..%d sizes, all > 0", file, shown,
                      CKPT_NDIM_MAX);
  for (int i = 0; i < ndim; i++) dims[i] = shape[i];
  chunk_dims(ndim, dims, elem, chunk);
  const char *step = "create dataspace";
  if ((space = H5Screate_simple(ndim, dims, NULL)) < 0) goto fail;
  step = "set chunking and Fletcher-32";
  if ((dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0) goto fail;
  if (H5Pset_chunk(dcpl, ndim, chunk) < 0 || H5Pset_fletcher32(dcpl) < 0) goto fail;
  step = "create dataset";
  if ((dset = H5Dcreate2(loc, name, filetype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0) goto fail;
  step = "write";
  if (data && H5Dwrite(dset, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) goto fail;
  step = "close dataset";
  hid_t d = dset;
  dset = -1;
  if (H5Dclose(d) < 0) goto fail;
  H5Pclose(dcpl);
  H5Sclose(space);
  return ST_OK;
fail:
  h5_reason(why, sizeof why);
  if (dset >= 0) H5Dclose(dset);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (space >= 0) H5Sclose(space);
  return status_set(err, ST_IO, "%s: %s: cannot %s (%s)", file, shown, step, why);
}

static int write_attr(hid_t loc, const char *name, hid_t filetype, hid_t memtype, const void *value,
                      const char *file, char **err) {
  char why[256];
  hid_t space = -1, attr = -1;
  if ((space = H5Screate(H5S_SCALAR)) < 0) goto fail;
  if ((attr = H5Acreate2(loc, name, filetype, space, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto fail;
  if (H5Awrite(attr, memtype, value) < 0) goto fail;
  H5Aclose(attr);
  H5Sclose(space);
  return ST_OK;
fail:
  h5_reason(why, sizeof why);
  if (attr >= 0) H5Aclose(attr);
  if (space >= 0) H5Sclose(space);
  return status_set(err, ST_IO, "%s: cannot write attribute %s (%s)", file, name, why);
}

/* Fixed-length strings of exactly the value's bytes, null-padded (no
 * terminator is stored; an empty value is one NUL), UTF-8. They live in the
 * attribute message itself, inside the checksummed object header or, past
 * 64 KiB (a vocab), HDF5's dense attribute storage, never in the global heap,
 * which has no checksum and whose damaged sizes libhdf5 1.10 trusts
 * (docs/checkpoint.md, "Strings"). h5py reads them as bytes. */
static int write_attr_string(hid_t loc, const char *name, const char *value, const char *file,
                             char **err) {
  const char *v = value ? value : "";
  size_t len = strlen(v);
  hid_t type = H5Tcopy(H5T_C_S1);
  if (type < 0 || H5Tset_size(type, len ? len : 1) < 0 || H5Tset_strpad(type, H5T_STR_NULLPAD) < 0 ||
      H5Tset_cset(type, H5T_CSET_UTF8) < 0) {
    char why[256];
    h5_reason(why, sizeof why);
    if (type >= 0) H5Tclose(type);
    return status_set(err, ST_IO, "%s: cannot make a string type (%s)", file, why);
  }
  int rc = write_attr(loc, name, type, type, len ? v : "", file, err);
  H5Tclose(type);
  return rc;
}

static int write_root_attrs(hid_t file_id, const ckpt_meta *m, const char *file, char **err) {
  char created[32];
  time_t now = time(NULL);
  struct tm utc;
  gmtime_r(&now, &utc);
  strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &utc);
  int64_t version = CKPT_FORMAT_VERSION;
  int rc;
  if ((rc = write_attr_string(file_id, "format", CKPT_FORMAT_NAME, file, err))) return rc;
  if ((rc = write_attr(file_id, "format_version", H5T_STD_I64LE, H5T_NATIVE_INT64, &version, file, err)))
    return rc;
  if ((rc = write_attr(file_id, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, &m->step, file, err))) return rc;
  if ((rc = write_attr(file_id, "tokens_seen", H5T_STD_I64LE, H5T_NATIVE_INT64, &m->tokens_seen, file,
                       err)))
    return rc;
  if ((rc = write_attr(file_id, "world_size", H5T_STD_I64LE, H5T_NATIVE_INT64, &m->world_size, file,
                       err)))
    return rc;
  if ((rc = write_attr(file_id, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &m->seed, file, err))) return rc;
  if ((rc = write_attr_string(file_id, "model_type", m->model_type, file, err))) return rc;
  if ((rc = write_attr_string(file_id, "config", m->config, file, err))) return rc;
  for (size_t i = 0; i < m->n_attrs; i++)
    if ((rc = write_attr_string(file_id, m->attrs[i].name, m->attrs[i].value, file, err))) return rc;
  if ((rc = write_attr_string(file_id, "ddpt_version", DDPT_VERSION " (git " DDPT_GIT_REVISION ")",
                              file, err)))
    return rc;
  return write_attr_string(file_id, "created", created, file, err);
}

/* Opens the group at path (relative to loc), creating it and any group on
 * the way with creation-order tracking, so listings follow write order. */
static hid_t open_or_create_group(hid_t loc, const char *path, hid_t gcpl) {
  char buf[1024];
  if (strlen(path) >= sizeof buf) return -1;
  strcpy(buf, path);
  for (char *p = buf;; p++) {
    if (*p != '/' && *p != '\0') continue;
    char saved = *p;
    *p = '\0';
    htri_t exists = H5Lexists(loc, buf, H5P_DEFAULT);
    if (exists < 0) return -1;
    if (!exists) {
      hid_t g = H5Gcreate2(loc, buf, H5P_DEFAULT, gcpl, H5P_DEFAULT);
      if (g < 0) return -1;
      H5Gclose(g);
    }
    *p = saved;
    if (saved == '\0') break;
  }
  return H5Gopen2(loc, path, H5P_DEFAULT);
}

/* A tensor created without data, to be written range by range
 * (ckpt_file_writer_put); got lists the ranges written so far. */
typedef struct {
  char *path; /* "optim/m/<name>" */
  size_t count;
  size_t (*got)[2]; /* (n_got) [offset, offset + count) */
  size_t n_got, cap;
} pending_tensor;

struct ckpt_file_writer {
  char *path;
  hid_t file_id, gcpl;
  pending_tensor *pending; /* (n_pending) */
  size_t n_pending, cap, last;
};

static void pending_free(ckpt_file_writer *w) {
  for (size_t i = 0; i < w->n_pending; i++) {
    free(w->pending[i].path);
    free(w->pending[i].got);
  }
  free(w->pending);
  w->pending = NULL;
  w->n_pending = w->cap = 0;
}

static int add_pending(ckpt_file_writer *w, const char *shown, const ckpt_tensor *t, char **err) {
  if (w->n_pending == w->cap) {
    size_t cap = w->cap ? 2 * w->cap : 64;
    pending_tensor *p = realloc(w->pending, cap * sizeof *p);
    if (!p) return status_set(err, ST_NOMEM, "%s: out of memory", w->path);
    w->pending = p;
    w->cap = cap;
  }
  pending_tensor *p = &w->pending[w->n_pending];
  memset(p, 0, sizeof *p);
  if (!(p->path = strdup(shown))) return status_set(err, ST_NOMEM, "%s: out of memory", w->path);
  p->count = 1;
  for (int d = 0; d < t->ndim; d++) p->count *= t->shape[d];
  w->n_pending++;
  return ST_OK;
}

/* Writes group's tensors; one without data is created empty and recorded
 * in w as pending. */
static int write_tensor_group(ckpt_file_writer *w, const char *group, const ckpt_tensor *t, size_t n,
                              char **err) {
  char why[256];
  hid_t file_id = w->file_id, gcpl = w->gcpl;
  const char *file = w->path;
  hid_t g = open_or_create_group(file_id, group, gcpl);
  if (g < 0)
    return status_set(err, ST_IO, "%s: cannot create group /%s (%s)", file, group,
                      h5_reason(why, sizeof why));
  int rc = ST_OK;
  for (size_t i = 0; i < n && rc == ST_OK; i++) {
    char shown[1024];
    snprintf(shown, sizeof shown, "%s/%s", group, t[i].name ? t[i].name : "(null)");
    if (!name_is_valid(t[i].name)) {
      rc = status_set(err, ST_INVALID, "%s: %s: a tensor name must be non-empty, not \".\" and without '/'",
                      file, shown);
      break;
    }
    rc = write_dataset(g, t[i].name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, sizeof(float), t[i].ndim,
                       t[i].shape, t[i].data, file, shown, err);
    if (rc == ST_OK && !t[i].data) rc = add_pending(w, shown, &t[i], err);
  }
  H5Gclose(g);
  return rc;
}

static int write_array(hid_t file_id, hid_t gcpl, const ckpt_array *a, const char *file, char **err) {
  char why[256], parent[1024];
  assert(a->path && a->data);
  const char *slash = strrchr(a->path, '/');
  const char *leaf = slash ? slash + 1 : a->path;
  if (a->path[0] == '/' || strlen(a->path) >= sizeof parent || !name_is_valid(leaf) ||
      strncmp(a->path, "params/", 7) == 0 || strncmp(a->path, "optim/", 6) == 0)
    return status_set(err, ST_INVALID,
                      "%s: %s: an array path is relative, ends in a name and is outside params/ and optim/",
                      file, a->path);
  if (!slash) return write_dataset(file_id, leaf, H5T_STD_I64LE, H5T_NATIVE_INT64, sizeof(int64_t),
                                   a->ndim, a->shape, a->data, file, a->path, err);
  memcpy(parent, a->path, (size_t)(slash - a->path));
  parent[slash - a->path] = '\0';
  hid_t g = open_or_create_group(file_id, parent, gcpl);
  if (g < 0)
    return status_set(err, ST_IO, "%s: cannot create group /%s (%s)", file, parent,
                      h5_reason(why, sizeof why));
  int rc = write_dataset(g, leaf, H5T_STD_I64LE, H5T_NATIVE_INT64, sizeof(int64_t), a->ndim, a->shape,
                         a->data, file, a->path, err);
  H5Gclose(g);
  return rc;
}

static int fsync_file(const char *path, char **err) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return status_set(err, ST_IO, "%s: cannot open to fsync: %s", path, strerror(errno));
  if (fsync(fd) != 0) {
    int e = errno;
    close(fd);
    return status_set(err, ST_IO, "%s: fsync failed: %s", path, strerror(e));
  }
  close(fd);
  return ST_OK;
}

/* An upper bound on the file c makes: its data, Fletcher-32 per chunk,
 * and a generous allowance of HDF5 metadata per dataset and per file. */
static size_t estimate_file_bytes(const ckpt_content *c) {
  const ckpt_tensor *groups[3] = {c->params, c->optim_m, c->optim_v};
  const size_t counts[3] = {c->n_params, c->n_optim_m, c->n_optim_v};
  size_t bytes = 0, datasets = c->n_arrays;
  for (int g = 0; g < 3; g++)
    for (size_t i = 0; i < counts[g]; i++) {
      size_t n = sizeof(float);
      for (int d = 0; d < groups[g][i].ndim; d++) n *= groups[g][i].shape[d];
      bytes += n;
      datasets++;
    }
  for (size_t i = 0; i < c->n_arrays; i++) {
    size_t n = sizeof(int64_t);
    for (int d = 0; d < c->arrays[i].ndim; d++) n *= c->arrays[i].shape[d];
    bytes += n;
  }
  size_t attrs = c->meta.config ? strlen(c->meta.config) : 0;
  for (size_t i = 0; i < c->meta.n_attrs; i++) attrs += strlen(c->meta.attrs[i].value);
  return bytes + bytes / 64 + datasets * 16384 + 2 * attrs + ((size_t)1 << 20);
}

/* Makes sure the file system has room for the file c makes before HDF5
 * writes a byte: fallocate(2) claims the estimated size in a file beside
 * path, which is then removed to free it for the write. HDF5 cannot take a
 * full disk: a failed H5Fclose leaves it a half-closed file whose clean-up
 * at exit crashes the process. Where fallocate is not supported the free
 * space is compared instead. Another process may take the space in between:
 * then HDF5 fails as it would have anyway. */
static int reserve_space(const char *path, const ckpt_content *c, char **err) {
  size_t need = estimate_file_bytes(c);
  /* Named as ckpt_dir_prune removes the temporary files of dead writers,
   * should this process die in between. */
  const char *slash = strrchr(path, '/');
  int dir_len = slash ? (int)(slash - path) : 1;
  size_t n = strlen(path) + 64;
  char *reserve = malloc(n);
  if (!reserve) return status_set(err, ST_NOMEM, "out of memory");
  snprintf(reserve, n, "%.*s/.ckpt-reserve.tmp-%ld", dir_len, slash ? path : ".", (long)getpid());
  int rc = ST_OK;
  int fd = open(reserve, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd < 0) {
    rc = status_set(err, ST_IO, "%s: cannot create: %s", reserve, strerror(errno));
    goto done;
  }
  int e = fallocate(fd, 0, 0, (off_t)need) == 0 ? 0 : errno;
  if (e == EOPNOTSUPP || e == ENOSYS) {
    struct statvfs vfs;
    e = fstatvfs(fd, &vfs) == 0 && (double)vfs.f_bavail * (double)vfs.f_frsize < (double)need ? ENOSPC : 0;
  }
  close(fd);
  unlink(reserve);
  if (e)
    rc = status_set(err, ST_IO, "%s: cannot reserve the %.1f MiB it needs: %s", path,
                    (double)need / (1024.0 * 1024.0), strerror(e));
done:
  free(reserve);
  return rc;
}

/* Creates path (which must not exist) as every ddpt checkpoint is made:
 * the HDF5 1.8 object format and creation-order tracking. *gcpl is the
 * group creation list for the groups inside it; both are open on success. */
static int create_h5(const char *path, hid_t *file_id, hid_t *gcpl, char **err) {
  char why[256];
  hid_t fcpl = -1, fapl = -1;
  *file_id = -1;
  const unsigned order = H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED;
  if ((fcpl = H5Pcreate(H5P_FILE_CREATE)) < 0 || H5Pset_link_creation_order(fcpl, order) < 0 ||
      (fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0 ||
      /* The 1.8 object format: metadata checksums, readable by every HDF5 >= 1.8. */
      H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) < 0 ||
      (*gcpl = H5Pcreate(H5P_GROUP_CREATE)) < 0 || H5Pset_link_creation_order(*gcpl, order) < 0) {
    status_set(err, ST_IO, "%s: cannot set up HDF5 property lists (%s)", path, h5_reason(why, sizeof why));
  } else if ((*file_id = H5Fcreate(path, H5F_ACC_EXCL, fcpl, fapl)) < 0) {
    status_set(err, ST_IO, "%s: cannot create (%s)", path, h5_reason(why, sizeof why));
  }
  if (fapl >= 0) H5Pclose(fapl);
  if (fcpl >= 0) H5Pclose(fcpl);
  if (*file_id >= 0) return ST_OK;
  if (*gcpl >= 0) H5Pclose(*gcpl);
  *gcpl = -1;
  return ST_IO;
}

/* Closes a file written through create_h5 and fsyncs it; on failure (or
 * when rc already says one happened) removes it. Returns rc or the
 * closing's failure. */
static int finish_h5(const char *path, hid_t file_id, hid_t gcpl, int rc, char **err) {
  char why[256];
  if (gcpl >= 0) H5Pclose(gcpl);
  if (H5Fclose(file_id) < 0 && rc == ST_OK)
    rc = status_set(err, ST_IO, "%s: cannot close (%s)", path, h5_reason(why, sizeof why));
  if (rc == ST_OK) rc = fsync_file(path, err);
  if (rc != ST_OK) {
    H5Eclear2(H5E_DEFAULT);
    remove(path);
  }
  return rc;
}

void ckpt_file_writer_abort(ckpt_file_writer *w) {
  if (!w) return;
  h5_quiet();
  finish_h5(w->path, w->file_id, w->gcpl, ST_IO, NULL);
  pending_free(w);
  free(w->path);
  free(w);
}

int ckpt_file_writer_open(const char *path, const ckpt_content *c, ckpt_file_writer **out, char **err) {
  assert(path && c && out);
  assert(c->n_params == 0 || c->params);
  assert(c->n_optim_m == 0 || c->optim_m);
  assert(c->n_optim_v == 0 || c->optim_v);
  assert(c->n_arrays == 0 || c->arrays);
  *out = NULL;
  int rc = reserve_space(path, c, err);
  if (rc) return rc;
  h5_quiet();
  ckpt_file_writer *w = calloc(1, sizeof *w);
  if (!w || !(w->path = strdup(path))) {
    free(w);
    return status_set(err, ST_NOMEM, "%s: out of memory", path);
  }
  if ((rc = create_h5(path, &w->file_id, &w->gcpl, err))) {
    free(w->path);
    free(w);
    return rc;
  }
  if ((rc = write_root_attrs(w->file_id, &c->meta, path, err))) goto fail;
  if ((rc = write_tensor_group(w, "params", c->params, c->n_params, err))) goto fail;
  if (c->n_optim_m || c->n_optim_v) {
    if ((rc = write_tensor_group(w, "optim/m", c->optim_m, c->n_optim_m, err))) goto fail;
    if ((rc = write_tensor_group(w, "optim/v", c->optim_v, c->n_optim_v, err))) goto fail;
  }
  for (size_t i = 0; i < c->n_arrays; i++)
    if ((rc = write_array(w->file_id, w->gcpl, &c->arrays[i], path, err))) goto fail;
  *out = w;
  return ST_OK;
fail:
  ckpt_file_writer_abort(w);
  return rc;
}

/* One read or write of a range (range_io): dset's elements go to or from
 * buf, elem bytes each, box by box; why keeps HDF5's reason for a
 * failure (closing the dataspaces would clear it). */
typedef struct range_io {
  hid_t dset, memtype;
  char *buf;
  size_t elem;
  int write;
  char why[256];
} range_io;

/* Reads or writes one box (start, count) against the next elements of
 * buf. The memory dataspace has the box's own shape: with a 1-D one
 * libhdf5 maps the selection element by element, three to four times
 * slower than the whole write (measured). */
static int range_box(range_io *r, int ndim, const hsize_t *start, const hsize_t *count) {
  hid_t fspace = H5Dget_space(r->dset), mspace = H5Screate_simple(ndim, count, NULL);
  int ok = fspace >= 0 && mspace >= 0 && H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
           (r->write ? H5Dwrite(r->dset, r->memtype, mspace, fspace, H5P_DEFAULT, r->buf)
                     : H5Dread(r->dset, r->memtype, mspace, fspace, H5P_DEFAULT, r->buf)) >= 0;
  if (!ok) h5_reason(r->why, sizeof r->why);
  if (mspace >= 0) H5Sclose(mspace);
  if (fspace >= 0) H5Sclose(fspace);
  size_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (size_t)count[i];
  r->buf += n * r->elem;
  return ok ? 0 : -1;
}

/* The elements [a, b) of the C-order flat data of the block whose
 * coordinates before dimension d are fixed in start, as boxes in C order:
 * a partial first row, the whole rows, a partial last row, the partial
 * ones recursively (at most 2 ndim boxes), each through range_box. */
static int range_boxes(range_io *r, int ndim, const hsize_t *dims, int d, hsize_t *start, hsize_t a, hsize_t b) {
  if (a >= b) return 0;
  hsize_t stride = 1, count[H5S_MAX_RANK];
  for (int i = d + 1; i < ndim; i++) stride *= dims[i];
  hsize_t i0 = a / stride, i1 = b / stride, ra = a % stride, rb = b % stride;
  if (i0 == i1 || (ra && i0 + 1 == i1 && !rb)) {
    start[d] = i0;
    return range_boxes(r, ndim, dims, d + 1, start, ra, rb ? rb : stride);
  }
  if (ra) {
    start[d] = i0++;
    if (range_boxes(r, ndim, dims, d + 1, start, ra, stride) < 0) return -1;
  }
  if (i1 > i0) {
    for (int i = 0; i < ndim; i++) count[i] = i < d ? 1 : i == d ? i1 - i0 : dims[i];
    start[d] = i0;
    for (int i = d + 1; i < ndim; i++) start[i] = 0;
    if (range_box(r, ndim, start, count) < 0) return -1;
  }
  start[d] = i1;
  return rb ? range_boxes(r, ndim, dims, d + 1, start, 0, rb) : 0;
}

/* Reads or writes elements [offset, offset + count) of dset's flat data
 * from or into buf; on failure r->why says why. */
static int range_io_run(range_io *r, size_t offset, size_t count) {
  hsize_t dims[H5S_MAX_RANK], start[H5S_MAX_RANK] = {0};
  hid_t space = H5Dget_space(r->dset);
  int ndim = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
  int ok = ndim >= 1 && H5Sget_simple_extent_dims(space, dims, NULL) >= 0;
  if (!ok) h5_reason(r->why, sizeof r->why);
  if (space >= 0) H5Sclose(space);
  return ok ? range_boxes(r, ndim, dims, 0, start, offset, offset + count) : -1;
}

static pending_tensor *find_pending(ckpt_file_writer *w, const char *path) {
  for (size_t k = 0; k < w->n_pending; k++) {
    size_t i = (w->last + k) % w->n_pending;
    if (strcmp(w->pending[i].path, path) == 0) {
      w->last = i;
      return &w->pending[i];
    }
  }
  return NULL;
}

int ckpt_file_writer_put(ckpt_file_writer *w, const char *group, const char *name, size_t offset, size_t count,
                         const float *data, char **err) {
  assert(w && group && name && data && count > 0);
  h5_quiet();
  char path[1100], why[256];
  snprintf(path, sizeof path, "%s/%s", group, name);
  pending_tensor *p = find_pending(w, path);
  if (!p) return status_set(err, ST_INVALID, "%s: %s is not a tensor left to write in ranges", w->path, path);
  if (offset > p->count || count > p->count - offset)
    return status_set(err, ST_INVALID, "%s: %s: elements %zu..%zu are outside its %zu", w->path, path, offset,
                      offset + count, p->count);
  if (p->n_got == p->cap) {
    size_t cap = p->cap ? 2 * p->cap : 4;
    size_t(*got)[2] = realloc(p->got, cap * sizeof *got);
    if (!got) return status_set(err, ST_NOMEM, "%s: out of memory", w->path);
    p->got = got;
    p->cap = cap;
  }
  range_io r = {H5Dopen2(w->file_id, path, H5P_DEFAULT), H5T_NATIVE_FLOAT, (char *)data, sizeof *data, 1, ""};
  int ok = r.dset >= 0 && range_io_run(&r, offset, count) == 0;
  if (!ok && r.dset >= 0) snprintf(why, sizeof why, "%s", r.why);
  else if (!ok) h5_reason(why, sizeof why);
  if (r.dset >= 0 && H5Dclose(r.dset) < 0 && ok) {
    ok = 0;
    h5_reason(why, sizeof why);
  }
  if (!ok)
    return status_set(err, ST_IO, "%s: %s: cannot write elements %zu..%zu (%s)", w->path, path, offset,
                      offset + count, why);
  p->got[p->n_got][0] = offset;
  p->got[p->n_got][1] = offset + count;
  p->n_got++;
  return ST_OK;
}

static int by_offset(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return (x > y) - (x < y);
}

/* Every pending tensor written whole, each element once: a missing range
 * would read back as zeros that no checksum questions. */
static int check_pending_written(ckpt_file_writer *w, char **err) {
  for (size_t i = 0; i < w->n_pending; i++) {
    pending_tensor *p = &w->pending[i];
    if (p->n_got) qsort(p->got, p->n_got, sizeof *p->got, by_offset);
    size_t at = 0;
    for (size_t j = 0; j <= p->n_got; j++) {
      size_t lo = j < p->n_got ? p->got[j][0] : p->count;
      if (lo > at)
        return status_set(err, ST_INVALID, "%s: %s: elements %zu..%zu were never written", w->path, p->path, at, lo);
      if (lo < at)
        return status_set(err, ST_INVALID, "%s: %s: elements from %zu were written twice", w->path, p->path, lo);
      if (j < p->n_got) at = p->got[j][1];
    }
  }
  return ST_OK;
}

int ckpt_file_writer_close(ckpt_file_writer *w, char **err) {
  assert(w);
  h5_quiet();
  int rc = check_pending_written(w, err);
  rc = finish_h5(w->path, w->file_id, w->gcpl, rc, err);
  pending_free(w);
  free(w->path);
  free(w);
  return rc;
}

int ckpt_file_write(const char *path, const ckpt_content *c, char **err) {
  ckpt_file_writer *w;
  int rc = ckpt_file_writer_open(path, c, &w, err);
  return rc ? rc : ckpt_file_writer_close(w, err);
}

/* ----------------------------------------------------------------- reading */

/* Nonzero when the object at name (relative to loc; "." is loc itself) has
 * a version-2 object header, the kind with a checksum, which every object of
 * a ddpt file (the 1.8 format) has. HDF5's earliest format (h5py's default)
 * has none, and libhdf5 1.10 decodes its messages unchecked: fuzz_ckpt found
 * an attribute whose damaged size overran a buffer inside H5Aopen. Only the
 * header's prefix is loaded here, none of its messages decoded. */
static int header_is_checksummed(hid_t loc, const char *name) {
  H5O_info_t info;
  if (H5Oget_info_by_name2(loc, name, &info, H5O_INFO_HDR, H5P_DEFAULT) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return 0;
  }
  return info.hdr.version >= 2;
}

#define UNCHECKSUMMED_HEADER                                                                          \
  "has no metadata checksum (HDF5's earliest format, h5py's default; ddpt writes the 1.8 format): " \
  "ddpt reads only checksummed files; from h5py, write them with libver=(\"v108\", \"v108\")"

int ckpt_file_open(const char *path, ckpt_file **out, char **err) {
  assert(path && out);
  h5_quiet();
  *out = NULL;
  char why[256];
  if (access(path, R_OK) != 0) return status_set(err, ST_IO, "%s: cannot open: %s", path, strerror(errno));
  hid_t id = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0)
    return status_set(err, ST_CORRUPT, "%s: not a readable HDF5 file (%s); it may be truncated or damaged",
                      path, h5_reason(why, sizeof why));
  if (!header_is_checksummed(id, ".")) {
    H5Fclose(id);
    return status_set(err, ST_CORRUPT, "%s: the root group " UNCHECKSUMMED_HEADER, path);
  }
  ckpt_file *f = calloc(1, sizeof *f);
  if (!f || !(f->path = strdup(path))) {
    free(f);
    H5Fclose(id);
    return status_set(err, ST_NOMEM, "%s: out of memory", path);
  }
  f->id = id;
  *out = f;
  return ST_OK;
}

void ckpt_file_close(ckpt_file *f) {
  if (!f) return;
  H5Fclose(f->id);
  free(f->path);
  free(f);
}

/* Opens root attribute name and checks, before any of it is read, that it
 * holds exactly one element of class want: H5Aread writes every element,
 * so an array attribute would overrun the caller's one-value buffer. *attr
 * and *type are open on success, closed on failure. */
static int open_attr(hid_t loc, const char *name, H5T_class_t want, hid_t *attr, hid_t *type,
                     const char *file, char **err) {
  char why[256];
  *type = -1;
  if ((*attr = H5Aopen(loc, name, H5P_DEFAULT)) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return status_set(err, ST_CORRUPT, "%s: root attribute %s is missing; not a ddpt checkpoint?", file, name);
  }
  hid_t space = H5Aget_space(*attr);
  hssize_t points = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
  if (space >= 0) H5Sclose(space);
  if (points < 0 || (*type = H5Aget_type(*attr)) < 0) {
    h5_reason(why, sizeof why);
    if (*type >= 0) H5Tclose(*type);
    H5Aclose(*attr);
    return status_set(err, ST_CORRUPT, "%s: cannot read root attribute %s (%s)", file, name, why);
  }
  const char *problem = NULL;
  if (points != 1) problem = "does not hold exactly one value";
  else if (H5Tget_class(*type) != want) problem = want == H5T_STRING ? "is not a string" : "is not an integer";
  if (!problem) return ST_OK;
  H5Tclose(*type);
  H5Aclose(*attr);
  return status_set(err, ST_CORRUPT, "%s: root attribute %s %s; the file is damaged or not ddpt's", file,
                    name, problem);
}

/* An integer root attribute, converted to memtype (native int64/uint64). */
static int read_attr(hid_t loc, const char *name, hid_t memtype, void *value, const char *file,
                     char **err) {
  char why[256];
  hid_t attr, type;
  int rc = open_attr(loc, name, H5T_INTEGER, &attr, &type, file, err);
  if (rc) return rc;
  if (H5Aread(attr, memtype, value) < 0)
    rc = status_set(err, ST_CORRUPT, "%s: cannot read root attribute %s (%s)", file, name,
                    h5_reason(why, sizeof why));
  H5Tclose(type);
  H5Aclose(attr);
  return rc;
}

/* Reads a fixed-length string attribute (what ddpt writes, and h5py for
 * numpy bytes) into *out, malloc'd and NUL-terminated. A variable-length
 * one is refused before anything is read: its bytes sit in HDF5's global
 * heap, which no checksum covers and whose damaged sizes make libhdf5 1.10
 * copy wild lengths or loop forever (docs/checkpoint.md, "Strings").
 * ckpt_file_upgrade reads those, for files the user vouches for. */
static int read_attr_string(hid_t loc, const char *name, char **out, const char *file, char **err) {
  char why[256];
  *out = NULL;
  hid_t attr, ftype, mtype = -1;
  int rc = open_attr(loc, name, H5T_STRING, &attr, &ftype, file, err);
  if (rc) return rc;
  if (H5Tis_variable_str(ftype) != 0) {
    H5Tclose(ftype);
    H5Aclose(attr);
    return status_set(err, ST_MISMATCH,
                      "%s: root attribute %s is a variable-length string, which ddpt no longer reads (a "
                      "checkpoint from ddpt before fixed-length attributes, or written by another tool): "
                      "convert it with `ddpt ckpt upgrade %s NEW`",
                      file, name, file);
  }
  /* Read as stored, with no conversion: the raw bytes, NUL-padded. */
  size_t size = H5Tget_size(ftype);
  char *s = size ? calloc(1, size + 1) : NULL;
  if (!s) {
    H5Tclose(ftype);
    H5Aclose(attr);
    return status_set(err, size ? ST_NOMEM : ST_CORRUPT, "%s: cannot read root attribute %s (%s)", file, name,
                      size ? "out of memory" : "zero-sized string type");
  }
  if ((mtype = H5Tcopy(ftype)) < 0 || H5Aread(attr, mtype, s) < 0) {
    rc = status_set(err, ST_CORRUPT, "%s: cannot read root attribute %s (%s)", file, name,
                    h5_reason(why, sizeof why));
    free(s);
  } else {
    *out = s;
  }
  if (mtype >= 0) H5Tclose(mtype);
  H5Tclose(ftype);
  H5Aclose(attr);
  return rc;
}

void ckpt_header_clear(ckpt_header *h) {
  if (!h) return;
  free(h->format);
  free(h->model_type);
  free(h->config);
  free(h->ddpt_version);
  free(h->created);
  memset(h, 0, sizeof *h);
}

int ckpt_file_read_header(ckpt_file *f, ckpt_header *out, char **err) {
  assert(f && out);
  h5_quiet();
  memset(out, 0, sizeof *out);
  const char *p = f->path;
  int rc;
  if ((rc = read_attr_string(f->id, "format", &out->format, p, err))) goto fail;
  if (strcmp(out->format, CKPT_FORMAT_NAME) != 0) {
    rc = status_set(err, ST_MISMATCH, "%s: format is \"%s\", not \"%s\"", p, out->format, CKPT_FORMAT_NAME);
    goto fail;
  }
  if ((rc = read_attr(f->id, "format_version", H5T_NATIVE_INT64, &out->format_version, p, err))) goto fail;
  if (out->format_version < 1 || out->format_version > CKPT_FORMAT_VERSION) {
    rc = status_set(err, ST_MISMATCH,
                    "%s: format_version %lld; this ddpt reads versions 1..%d (upgrade ddpt)", p,
                    (long long)out->format_version, CKPT_FORMAT_VERSION);
    goto fail;
  }
  if ((rc = read_attr(f->id, "step", H5T_NATIVE_INT64, &out->step, p, err))) goto fail;
  if ((rc = read_attr(f->id, "tokens_seen", H5T_NATIVE_INT64, &out->tokens_seen, p, err))) goto fail;
  if ((rc = read_attr(f->id, "world_size", H5T_NATIVE_INT64, &out->world_size, p, err))) goto fail;
  if ((rc = read_attr(f->id, "seed", H5T_NATIVE_UINT64, &out->seed, p, err))) goto fail;
  if (out->step < 0 || out->tokens_seen < 0 || out->world_size < 1) {
    rc = status_set(err, ST_CORRUPT,
                    "%s: root attributes step %lld, tokens_seen %lld, world_size %lld are out of range (step and "
                    "tokens_seen >= 0, world_size >= 1): the file is damaged or not ddpt's",
                    p, (long long)out->step, (long long)out->tokens_seen, (long long)out->world_size);
    goto fail;
  }
  if ((rc = read_attr_string(f->id, "model_type", &out->model_type, p, err))) goto fail;
  if ((rc = read_attr_string(f->id, "config", &out->config, p, err))) goto fail;
  if ((rc = read_attr_string(f->id, "ddpt_version", &out->ddpt_version, p, err))) goto fail;
  if ((rc = read_attr_string(f->id, "created", &out->created, p, err))) goto fail;
  return ST_OK;
fail:
  ckpt_header_clear(out);
  return rc;
}

int ckpt_file_read_attr(ckpt_file *f, const char *name, char **value, char **err) {
  assert(f && name && value);
  h5_quiet();
  *value = NULL;
  htri_t exists = H5Aexists(f->id, name);
  if (exists < 0) return status_set(err, ST_CORRUPT, "%s: cannot look up root attribute %s", f->path, name);
  if (!exists) return ST_OK;
  return read_attr_string(f->id, name, value, f->path, err);
}

void ckpt_entries_free(ckpt_entry *e, size_t n) {
  if (!e) return;
  for (size_t i = 0; i < n; i++) free(e[i].path);
  free(e);
}

/* ddpt's files nest three groups deep at most (optim/m/NAME); a checkpoint
 * from elsewhere may nest more, but not this much. */
enum { LIST_MAX_DEPTH = 32, LIST_MAX_GROUPS = 4096 };

typedef struct {
  ckpt_entry *e;
  size_t n, cap;
  int rc;
  char **err;
  const char *file;
  H5_index_t index;
  /* The groups entered so far, by address: a group linked twice (or into
   * itself) is a damaged file. libhdf5's H5Lvisit remembers only objects
   * with more than one link, so a damaged header that links a group into
   * itself sent it round forever (fuzz_ckpt found one). */
  haddr_t groups[LIST_MAX_GROUPS];
  size_t ngroups;
  const char *prefix; /* the path of the group being listed, "" for the root */
  int depth;
  int unindexed; /* libhdf5 could not iterate a group (no creation-order index?) */
} list_ctx;

static int describe_dataset(hid_t dset, ckpt_entry *e, const char *file, char **err) {
  char why[256];
  hid_t type = -1, space = -1, dcpl = -1;
  if ((type = H5Dget_type(dset)) < 0 || (space = H5Dget_space(dset)) < 0 ||
      (dcpl = H5Dget_create_plist(dset)) < 0)
    goto fail;
  H5T_class_t cls = H5Tget_class(type);
  size_t size = H5Tget_size(type);
  e->dtype = CKPT_OTHER;
  if (cls == H5T_FLOAT && size == 4) e->dtype = CKPT_FLOAT32;
  if (cls == H5T_INTEGER && size == 8 && H5Tget_sign(type) == H5T_SGN_2) e->dtype = CKPT_INT64;
  int ndim = H5Sget_simple_extent_ndims(space);
  if (ndim < 0) goto fail;
  if (ndim > CKPT_NDIM_MAX) {
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Tclose(type);
    return status_set(err, ST_CORRUPT, "%s: %s has %d dimensions; ddpt handles at most %d", file, e->path,
                      ndim, CKPT_NDIM_MAX);
  }
  hsize_t dims[CKPT_NDIM_MAX];
  if (H5Sget_simple_extent_dims(space, dims, NULL) < 0) goto fail;
  e->ndim = ndim;
  e->count = 1;
  for (int i = 0; i < ndim; i++) {
    e->shape[i] = (size_t)dims[i];
    /* A damaged shape must not wrap into a small count that a buffer is
     * then sized by. */
    if (dims[i] > SIZE_MAX || !size_mul_ok(e->count, (size_t)dims[i], &e->count)) {
      H5Pclose(dcpl);
      H5Sclose(space);
      H5Tclose(type);
      return status_set(err, ST_CORRUPT, "%s: %s has a shape whose element count does not fit in memory "
                        "addresses; the file is damaged", file, e->path);
    }
  }
  int nfilters = H5Pget_nfilters(dcpl);
  for (int i = 0; i < nfilters; i++) {
    unsigned flags, config;
    size_t nelem = 0;
    if (H5Pget_filter2(dcpl, (unsigned)i, &flags, &nelem, NULL, 0, NULL, &config) == H5Z_FILTER_FLETCHER32)
      e->checksummed = 1;
  }
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Tclose(type);
  return ST_OK;
fail:
  h5_reason(why, sizeof why);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (space >= 0) H5Sclose(space);
  if (type >= 0) H5Tclose(type);
  return status_set(err, ST_CORRUPT, "%s: %s: cannot read its description (%s)", file, e->path, why);
}

static int list_group(hid_t group, list_ctx *c);

/* A group below the one being listed: listed in turn, once, not too deep. */
static int list_subgroup(hid_t obj, const char *path, list_ctx *c) {
  H5O_info_t info;
  if (H5Oget_info2(obj, &info, H5O_INFO_BASIC) < 0) {
    char why[256];
    return c->rc = status_set(c->err, ST_CORRUPT, "%s: %s: cannot read its header (%s)", c->file, path,
                              h5_reason(why, sizeof why));
  }
  for (size_t i = 0; i < c->ngroups; i++)
    if (c->groups[i] == info.addr)
      return c->rc = status_set(c->err, ST_CORRUPT, "%s: group %s is linked twice (a loop of groups); the file is "
                                "damaged", c->file, path);
  if (c->ngroups == LIST_MAX_GROUPS || c->depth == LIST_MAX_DEPTH)
    return c->rc = status_set(c->err, ST_CORRUPT, "%s: %s: more than %d groups, or nested deeper than %d; the "
                              "file is damaged or not a checkpoint", c->file, path, LIST_MAX_GROUPS, LIST_MAX_DEPTH);
  c->groups[c->ngroups++] = info.addr;
  const char *prefix = c->prefix;
  c->prefix = path;
  c->depth++;
  int rc = list_group(obj, c);
  c->depth--;
  c->prefix = prefix;
  return rc;
}

static herr_t list_link(hid_t group, const char *name, const H5L_info_t *info, void *data) {
  list_ctx *c = data;
  if (info->type != H5L_TYPE_HARD) return 0;
  char *path = file_path_join(c->prefix, name); /* the root's prefix is "": just name */
  if (!path) {
    c->rc = status_set(c->err, ST_NOMEM, "%s: out of memory listing datasets", c->file);
    return -1;
  }
  if (!header_is_checksummed(group, name)) {
    c->rc = status_set(c->err, ST_CORRUPT, "%s: %s " UNCHECKSUMMED_HEADER, c->file, path);
    free(path);
    return -1;
  }
  hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
  if (obj < 0) {
    char why[256];
    c->rc = status_set(c->err, ST_CORRUPT, "%s: %s: cannot open (%s)", c->file, path, h5_reason(why, sizeof why));
    free(path);
    return -1;
  }
  H5I_type_t type = H5Iget_type(obj);
  if (type == H5I_GROUP) {
    int rc = list_subgroup(obj, path, c);
    H5Oclose(obj);
    free(path);
    return rc ? -1 : 0;
  }
  if (type != H5I_DATASET) {
    H5Oclose(obj);
    free(path);
    return 0;
  }
  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 64;
    ckpt_entry *e = realloc(c->e, cap * sizeof *e);
    if (!e) {
      H5Oclose(obj);
      c->rc = status_set(c->err, ST_NOMEM, "%s: out of memory listing datasets", c->file);
      return -1;
    }
    c->e = e;
    c->cap = cap;
  }
  ckpt_entry *e = &c->e[c->n];
  memset(e, 0, sizeof *e);
  e->path = path;
  c->n++;
  c->rc = describe_dataset(obj, e, c->file, c->err);
  H5Oclose(obj);
  return c->rc ? -1 : 0;
}

/* The links of one group, in c->index order; groups below it in turn. */
static int list_group(hid_t group, list_ctx *c) {
  if (H5Literate(group, c->index, H5_ITER_INC, NULL, list_link, c) < 0 && c->rc == ST_OK) {
    char why[256];
    c->unindexed = 1;
    c->rc = status_set(c->err, ST_CORRUPT, "%s: cannot list the datasets of %s (%s)", c->file,
                       *c->prefix ? c->prefix : "/", h5_reason(why, sizeof why));
  }
  return c->rc;
}

/* Every dataset below the root, depth first, each group's links in
 * creation order (ddpt's files track it in every group) or, for a file
 * that does not, by name. */
static int list_all(ckpt_file *f, H5_index_t index, list_ctx *c, char **err) {
  *c = (list_ctx){.rc = ST_OK, .err = err, .file = f->path, .index = index, .prefix = ""};
  H5O_info_t info;
  if (H5Oget_info2(f->id, &info, H5O_INFO_BASIC) >= 0) c->groups[c->ngroups++] = info.addr;
  return list_group(f->id, c);
}

int ckpt_file_list(ckpt_file *f, ckpt_entry **out, size_t *n, char **err) {
  assert(f && out && n);
  h5_quiet();
  *out = NULL;
  *n = 0;
  list_ctx *c = malloc(sizeof *c);
  if (!c) return status_set(err, ST_NOMEM, "%s: out of memory listing datasets", f->path);
  char *first = NULL;
  int rc = list_all(f, H5_INDEX_CRT_ORDER, c, &first);
  if (rc && c->unindexed) {
    /* A group without a creation-order index (ddpt's files track it in
     * every group; others may not): by name. If that fails too, its
     * message says why. */
    H5Eclear2(H5E_DEFAULT);
    ckpt_entries_free(c->e, c->n);
    rc = list_all(f, H5_INDEX_NAME, c, err);
  } else if (rc) {
    status_set(err, rc, "%s", first); /* a refusal: the file is damaged */
  }
  free(first);
  if (rc) ckpt_entries_free(c->e, c->n);
  else *out = c->e, *n = c->n;
  free(c);
  return rc;
}

/* Nonzero when every link on path (relative to loc) is a hard link. A
 * soft, external or user-defined link is something ddpt never writes, and
 * opening through an external one would open another file the damaged or
 * foreign file names. Each prefix is checked before the next is traversed. */
static int links_are_hard(hid_t loc, const char *path) {
  char buf[1024];
  if (strlen(path) >= sizeof buf) return 0;
  strcpy(buf, path);
  for (char *p = buf;; p++) {
    if (*p != '/' && *p != '\0') continue;
    char saved = *p;
    *p = '\0';
    H5L_info_t info;
    if (*buf && (H5Lget_info(loc, buf, &info, H5P_DEFAULT) < 0 || info.type != H5L_TYPE_HARD)) {
      H5Eclear2(H5E_DEFAULT);
      return 0;
    }
    *p = saved;
    if (saved == '\0') return 1;
  }
}

/* Why ddpt will not read this dataset's data, or NULL when it may. Checked
 * before any data is read: only plain numbers (a variable-length,
 * reference or compound type makes libhdf5 follow what the file says,
 * into the unchecksummed global heap or other objects), stored in this
 * file (not a virtual dataset or external storage, which read other files),
 * through filters ddpt knows (Fletcher-32, which it writes; deflate and
 * shuffle, which other tools do; not szip, n-bit, scale-offset or a plugin
 * loaded by its id). */
static const char *read_refusal(hid_t type, hid_t dcpl, char *buf, size_t size) {
  H5T_class_t cls = H5Tget_class(type);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    return "its elements are not plain numbers (ddpt reads float and integer datasets only)";
  H5D_layout_t layout = H5Pget_layout(dcpl);
  if (layout != H5D_CHUNKED && layout != H5D_CONTIGUOUS && layout != H5D_COMPACT)
    return "it is a virtual dataset, whose data lives in other files";
  if (H5Pget_external_count(dcpl) != 0) return "it keeps its data in external files";
  int nfilters = H5Pget_nfilters(dcpl);
  for (int i = 0; i < nfilters; i++) {
    unsigned flags, config;
    size_t nelem = 0;
    H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &nelem, NULL, 0, NULL, &config);
    if (id != H5Z_FILTER_FLETCHER32 && id != H5Z_FILTER_DEFLATE && id != H5Z_FILTER_SHUFFLE) {
      snprintf(buf, size, "it uses HDF5 filter %d; ddpt reads only Fletcher-32, deflate and shuffle", (int)id);
      return buf;
    }
  }
  return nfilters < 0 ? "its filters cannot be read" : NULL;
}

/* The most bytes one stored chunk of raw bytes may take: Fletcher-32 adds
 * 4, and deflate's worst case (incompressible data) a little more. */
static size_t chunk_stored_max(size_t raw) { return raw + raw / 16 + 64; }

/* Why the chunk index of a chunked dataset cannot be trusted, or NULL. The
 * index (a version-1 B-tree in the HDF5 1.8 format ddpt writes) has no
 * checksum, and libhdf5 sizes the buffer it reads a chunk into by the size
 * recorded there: a damaged one made H5Dread ask for 4 GiB (found by
 * fuzz_ckpt). So every stored chunk must lie inside the file, be no larger
 * than its data allows, and not have skipped Fletcher-32 (a damaged filter
 * mask would turn the check off). Chunks are looked up by coordinate, each
 * a B-tree search, so a file with many tiny chunks costs n log n. */
static const char *chunk_refusal(hid_t file, hid_t dset, hid_t type, hid_t dcpl, hid_t space, char *buf,
                                 size_t size) {
  hsize_t dims[H5S_MAX_RANK], chunk[H5S_MAX_RANK], at[H5S_MAX_RANK], file_size = 0;
  int ndim = H5Sget_simple_extent_ndims(space);
  if (ndim < 1 || ndim > H5S_MAX_RANK || H5Sget_simple_extent_dims(space, dims, NULL) < 0 ||
      H5Pget_chunk(dcpl, ndim, chunk) != ndim || H5Fget_filesize(file, &file_size) < 0)
    return "its chunking cannot be read";
  size_t raw = H5Tget_size(type);
  for (int d = 0; d < ndim; d++) {
    if (dims[d] == 0) return NULL; /* no elements, no chunks */
    if (chunk[d] == 0 || chunk[d] > SIZE_MAX || !size_mul_ok(raw, (size_t)chunk[d], &raw))
      return "its chunk shape does not fit in memory addresses";
    at[d] = 0;
  }
  unsigned fletcher = 0;
  int nfilters = H5Pget_nfilters(dcpl);
  for (int i = 0; i < nfilters && i < 32; i++) {
    unsigned flags, config;
    size_t nelem = 0;
    if (H5Pget_filter2(dcpl, (unsigned)i, &flags, &nelem, NULL, 0, NULL, &config) == H5Z_FILTER_FLETCHER32)
      fletcher |= 1u << i;
  }
  for (;;) {
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t stored = 0;
    if (H5Dget_chunk_info_by_coord(dset, at, &mask, &addr, &stored) < 0) {
      H5Eclear2(H5E_DEFAULT);
      return "its chunk index cannot be read";
    }
    if (addr != HADDR_UNDEF &&
        (stored > chunk_stored_max(raw) || addr > file_size || stored > file_size - addr || (mask & fletcher))) {
      snprintf(buf, size,
               "a chunk claims %llu bytes at offset %llu%s (at most %zu bytes, within the %llu-byte file); its "
               "chunk index is damaged",
               (unsigned long long)stored, (unsigned long long)addr, mask & fletcher ? ", unchecksummed" : "",
               chunk_stored_max(raw), (unsigned long long)file_size);
      return buf;
    }
    int d = ndim - 1;
    while (d >= 0 && (at[d] += chunk[d]) >= dims[d]) at[d--] = 0;
    if (d < 0) return NULL;
  }
}

/* Reads the dataset at path into dst: whole (count must be its element
 * count), or elements [offset, offset + count) of its flat data. */
static int read_dataset(ckpt_file *f, const char *path, hid_t memtype, void *dst, size_t offset, size_t count,
                        int whole, char **err) {
  char why[256];
  if (!links_are_hard(f->id, path)) return status_set(err, ST_INVALID, "%s: no dataset %s", f->path, path);
  if (!header_is_checksummed(f->id, path))
    return status_set(err, ST_CORRUPT, "%s: %s " UNCHECKSUMMED_HEADER, f->path, path);
  hid_t dset = H5Dopen2(f->id, path, H5P_DEFAULT);
  if (dset < 0) {
    H5Eclear2(H5E_DEFAULT);
    return status_set(err, ST_INVALID, "%s: no dataset %s", f->path, path);
  }
  int rc = ST_OK;
  hid_t space = H5Dget_space(dset), type = H5Dget_type(dset), dcpl = H5Dget_create_plist(dset);
  hssize_t have = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
  const char *refusal = NULL;
  if (have < 0 || type < 0 || dcpl < 0)
    rc = status_set(err, ST_CORRUPT, "%s: %s: cannot read its description (%s)", f->path, path,
                    h5_reason(why, sizeof why));
  else if ((refusal = read_refusal(type, dcpl, why, sizeof why)) ||
           (H5Pget_layout(dcpl) == H5D_CHUNKED &&
            (refusal = chunk_refusal(f->id, dset, type, dcpl, space, why, sizeof why))))
    rc = status_set(err, ST_CORRUPT, "%s: %s: not read: %s; the file is damaged or not ddpt's", f->path, path,
                    refusal);
  else if (whole && (size_t)have != count)
    rc = status_set(err, ST_MISMATCH, "%s: %s holds %lld elements, the caller expects %zu", f->path, path,
                    (long long)have, count);
  else if (!whole && (offset > (size_t)have || count > (size_t)have - offset))
    rc = status_set(err, ST_MISMATCH, "%s: %s holds %lld elements, the caller asks for %zu..%zu", f->path, path,
                    (long long)have, offset, offset + count);
  else if (whole && H5Dread(dset, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0)
    rc = status_set(err, ST_CORRUPT, "%s: %s: cannot read (%s); the file is damaged", f->path, path,
                    h5_reason(why, sizeof why));
  else if (!whole) {
    range_io r = {dset, memtype, dst, H5Tget_size(memtype), 0, ""};
    if (range_io_run(&r, offset, count) < 0)
      rc = status_set(err, ST_CORRUPT, "%s: %s: cannot read (%s); the file is damaged", f->path, path, r.why);
  }
  if (dcpl >= 0) H5Pclose(dcpl);
  if (type >= 0) H5Tclose(type);
  if (space >= 0) H5Sclose(space);
  H5Dclose(dset);
  return rc;
}

int ckpt_file_read_float(ckpt_file *f, const char *path, float *dst, size_t count, char **err) {
  assert(f && path && dst);
  h5_quiet();
  return read_dataset(f, path, H5T_NATIVE_FLOAT, dst, 0, count, 1, err);
}

int ckpt_file_read_float_range(ckpt_file *f, const char *path, size_t offset, size_t count, float *dst,
                               char **err) {
  assert(f && path && dst && count > 0);
  h5_quiet();
  return read_dataset(f, path, H5T_NATIVE_FLOAT, dst, offset, count, 0, err);
}

int ckpt_file_read_int64(ckpt_file *f, const char *path, int64_t *dst, size_t count, char **err) {
  assert(f && path && dst);
  h5_quiet();
  return read_dataset(f, path, H5T_NATIVE_INT64, dst, 0, count, 1, err);
}

/* ----------------------------------------------------------------- loading */

void ckpt_load_report_clear(ckpt_load_report *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n_missing; i++) free(r->missing[i]);
  for (size_t i = 0; i < r->n_unexpected; i++) free(r->unexpected[i]);
  free(r->missing);
  free(r->unexpected);
  memset(r, 0, sizeof *r);
}

/* The entry's name within group ("params/x" in "params" is "x"), or NULL
 * when it is not a direct child of group. */
static const char *name_in_group(const ckpt_entry *e, const char *group) {
  size_t g = strlen(group);
  if (strncmp(e->path, group, g) != 0 || e->path[g] != '/') return NULL;
  const char *name = e->path + g + 1;
  return strchr(name, '/') ? NULL : name;
}

/* The checks of a load: which entry of the file each target is (*match,
 * (n) entry indices, ne for a missing one), names missing and unexpected
 * into *r, shapes and types. On success *e (ne entries) and *match are the
 * caller's to free; on failure both are freed, and *names_failed says a
 * strict load failed on names (r is then filled). */
static int match_targets(ckpt_file *f, const char *group, const ckpt_tensor *targets, size_t n, int strict,
                         ckpt_load_report *r, ckpt_entry **e, size_t *ne, size_t **match, int *names_failed,
                         char **err) {
  char *used = NULL; /* (ne) nonzero when some target takes the entry */
  char a[256], b[256];
  *names_failed = 0;
  *match = NULL;
  int rc = ckpt_file_list(f, e, ne, err);
  if (rc) return rc;
  if (!(*match = malloc((n + 1) * sizeof **match)) || !(used = calloc(*ne + 1, 1)) ||
      !(r->missing = calloc(n + 1, sizeof *r->missing)) || !(r->unexpected = calloc(*ne + 1, sizeof *r->unexpected)))
    goto nomem;
  for (size_t i = 0; i < n; i++) {
    const ckpt_tensor *t = &targets[i];
    assert(t->name && shape_is_valid(t->ndim, t->shape));
    (*match)[i] = *ne;
    for (size_t j = 0; j < *ne; j++) {
      const char *name = name_in_group(&(*e)[j], group);
      if (name && strcmp(name, t->name) == 0) {
        (*match)[i] = j;
        break;
      }
    }
    if ((*match)[i] == *ne) {
      if (!(r->missing[r->n_missing] = strdup(t->name))) goto nomem;
      r->n_missing++;
      continue;
    }
    const ckpt_entry *m = &(*e)[(*match)[i]];
    used[(*match)[i]] = 1;
    int same = m->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = m->shape[d] == t->shape[d];
    if (!same) {
      format_shape(a, sizeof a, m->ndim, m->shape);
      format_shape(b, sizeof b, t->ndim, t->shape);
      rc = status_set(err, ST_MISMATCH, "%s: %s has shape %s in the checkpoint but %s in the model", f->path,
                      m->path, a, b);
      goto fail;
    }
    if (m->dtype != CKPT_FLOAT32) {
      rc = status_set(err, ST_MISMATCH, "%s: %s is not float32", f->path, m->path);
      goto fail;
    }
  }
  for (size_t j = 0; j < *ne; j++) {
    const char *name = name_in_group(&(*e)[j], group);
    if (!name || used[j]) continue;
    if (!(r->unexpected[r->n_unexpected] = strdup(name))) goto nomem;
    r->n_unexpected++;
  }
  if (strict && (r->n_missing || r->n_unexpected)) {
    *names_failed = 1;
    if (r->n_missing)
      rc = status_set(err, ST_MISMATCH, "%s: %s/%s is missing from the checkpoint (strict load; %zu missing, %zu unexpected)",
                      f->path, group, r->missing[0], r->n_missing, r->n_unexpected);
    else
      rc = status_set(err, ST_MISMATCH, "%s: %s/%s is not a tensor of the model (strict load; %zu unexpected)",
                      f->path, group, r->unexpected[0], r->n_unexpected);
    goto fail;
  }
  free(used);
  return ST_OK;
nomem:
  rc = status_set(err, ST_NOMEM, "%s: out of memory loading /%s", f->path, group);
fail:
  free(used);
  free(*match);
  *match = NULL;
  ckpt_entries_free(*e, *ne);
  *e = NULL;
  *ne = 0;
  return rc;
}

int ckpt_file_load(ckpt_file *f, const char *group, const ckpt_tensor *targets, size_t n, int strict,
                   ckpt_load_report *report, char **err) {
  assert(f && group && (n == 0 || targets));
  ckpt_load_report r = {0};
  ckpt_entry *e = NULL;
  size_t ne = 0, *match = NULL;
  int names_failed;
  int rc = match_targets(f, group, targets, n, strict, &r, &e, &ne, &match, &names_failed, err);
  for (size_t i = 0; i < n && rc == ST_OK; i++) {
    if (match[i] == ne) continue;
    assert(targets[i].data);
    if ((rc = ckpt_file_read_float(f, e[match[i]].path, targets[i].data, e[match[i]].count, err))) break;
    r.n_loaded++;
  }
  free(match);
  ckpt_entries_free(e, ne);
  if (report && (rc == ST_OK || names_failed)) *report = r;
  else ckpt_load_report_clear(&r);
  return rc;
}

int ckpt_file_load_ranges(ckpt_file *f, const char *group, const ckpt_tensor *tensors, size_t n,
                          const ckpt_range *ranges, size_t nr, char **err) {
  assert(f && group && (n == 0 || tensors) && (nr == 0 || ranges));
  ckpt_load_report r = {0};
  ckpt_entry *e = NULL;
  size_t ne = 0, *match = NULL;
  int names_failed;
  int rc = match_targets(f, group, tensors, n, 1, &r, &e, &ne, &match, &names_failed, err);
  for (size_t i = 0; i < nr && rc == ST_OK; i++) {
    assert(ranges[i].tensor < n && ranges[i].data);
    rc = ckpt_file_read_float_range(f, e[match[ranges[i].tensor]].path, ranges[i].offset, ranges[i].count,
                                    ranges[i].data, err);
  }
  free(match);
  ckpt_entries_free(e, ne);
  ckpt_load_report_clear(&r);
  return rc;
}

/* ----------------------------------------------------------------- verify */

static const ckpt_entry *find_entry(const ckpt_entry *e, size_t n, const char *path) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(e[i].path, path) == 0) return &e[i];
  return NULL;
}

static int same_shape(const ckpt_entry *a, const ckpt_entry *b) {
  if (a->ndim != b->ndim) return 0;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return 0;
  return 1;
}

/* optim/m and optim/v hold one tensor per parameter, of its shape. */
static int verify_optim(const char *file, const ckpt_entry *e, size_t n, char **err) {
  static const char *const moments[] = {"optim/m", "optim/v"};
  char path[1100], a[256], b[256];
  for (size_t i = 0; i < n; i++) {
    const char *name = name_in_group(&e[i], "params");
    if (!name) continue;
    for (int k = 0; k < 2; k++) {
      snprintf(path, sizeof path, "%s/%s", moments[k], name);
      const ckpt_entry *m = find_entry(e, n, path);
      if (!m) return status_set(err, ST_CORRUPT, "%s: %s has no %s", file, e[i].path, path);
      if (!same_shape(m, &e[i])) {
        format_shape(a, sizeof a, m->ndim, m->shape);
        format_shape(b, sizeof b, e[i].ndim, e[i].shape);
        return status_set(err, ST_CORRUPT, "%s: %s has shape %s but %s has %s", file, path, a, e[i].path, b);
      }
    }
  }
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < 2; k++) {
      const char *name = name_in_group(&e[i], moments[k]);
      if (!name) continue;
      snprintf(path, sizeof path, "params/%s", name);
      if (!find_entry(e, n, path)) return status_set(err, ST_CORRUPT, "%s: %s has no %s", file, e[i].path, path);
    }
  return ST_OK;
}

/* A tensor of a model is finite: a NaN or an infinity that Fletcher-32
 * vouches for is a diverged run or an edited file, never a usable state. */
static int check_finite(const char *file, const char *path, const float *x, size_t count, size_t first,
                        char **err) {
  for (size_t i = 0; i < count; i++)
    if (!isfinite(x[i]))
      return status_set(err, ST_CORRUPT,
                        "%s: %s holds a non-finite value (%g at element %zu): the run diverged or the file was "
                        "altered; use an earlier checkpoint",
                        file, path, (double)x[i], first + i);
  return ST_OK;
}

int ckpt_file_verify(const char *path, char **err) {
  assert(path);
  ckpt_file *f = NULL;
  ckpt_header h = {0};
  ckpt_entry *e = NULL;
  size_t n = 0;
  void *buf = NULL;
  int rc;
  if ((rc = ckpt_file_open(path, &f, err))) return rc;
  if ((rc = ckpt_file_read_header(f, &h, err))) goto done;
  if ((rc = ckpt_file_list(f, &e, &n, err))) goto done;
  size_t most = 0, most_int64 = 0, n_params = 0, n_optim = 0;
  for (size_t i = 0; i < n; i++) {
    if (e[i].count > most) most = e[i].count;
    if (e[i].dtype == CKPT_INT64 && e[i].count > most_int64) most_int64 = e[i].count;
    int tensor = strncmp(e[i].path, "params/", 7) == 0 || strncmp(e[i].path, "optim/", 6) == 0;
    n_params += strncmp(e[i].path, "params/", 7) == 0;
    n_optim += strncmp(e[i].path, "optim/", 6) == 0;
    if (e[i].dtype == CKPT_OTHER || (tensor && e[i].dtype != CKPT_FLOAT32)) {
      rc = status_set(err, ST_CORRUPT, "%s: %s has an unexpected element type (want %s)", path, e[i].path,
                      tensor ? "float32" : "float32 or int64");
      goto done;
    }
    if (!e[i].checksummed) {
      rc = status_set(err, ST_CORRUPT, "%s: %s has no Fletcher-32 checksum", path, e[i].path);
      goto done;
    }
  }
  if (n_params == 0) {
    rc = status_set(err, ST_CORRUPT, "%s: no tensors under /params", path);
    goto done;
  }
  if (n_optim && (rc = verify_optim(path, e, n, err))) goto done;
  /* Tensors are read a piece at a time, so verifying needs no more memory
   * than VERIFY_PIECE floats whatever the model (a resume verifies on every
   * rank); the int64 arrays (data positions, RNG states) are small. */
  size_t piece = most_int64 > VERIFY_PIECE ? most_int64 : VERIFY_PIECE;
  if (most && !(buf = malloc(piece * 8))) {
    rc = status_set(err, ST_NOMEM, "%s: out of memory for a %zu-element dataset", path, piece);
    goto done;
  }
  for (size_t i = 0; i < n && rc == ST_OK; i++) {
    if (e[i].dtype != CKPT_FLOAT32) {
      rc = ckpt_file_read_int64(f, e[i].path, buf, e[i].count, err);
      continue;
    }
    for (size_t at = 0; at < e[i].count && rc == ST_OK; at += VERIFY_PIECE) {
      size_t k = e[i].count - at < VERIFY_PIECE ? e[i].count - at : VERIFY_PIECE;
      if (!(rc = ckpt_file_read_float_range(f, e[i].path, at, k, buf, err)))
        rc = check_finite(path, e[i].path, buf, k, at, err);
    }
  }
done:
  free(buf);
  ckpt_entries_free(e, n);
  ckpt_header_clear(&h);
  ckpt_file_close(f);
  return rc;
}

/* ----------------------------------------------------------------- upgrade */

typedef struct {
  hid_t to;
  const char *from_path, *to_path;
  char **err;
  int rc;
} upgrade_ctx;

/* The one reader of variable-length strings (see read_attr_string): it
 * trusts the global heap of a file the user chose to upgrade. */
static int read_vlen_string(hid_t attr, hid_t ftype, char **out) {
  char *s = NULL;
  hid_t mtype = H5Tcopy(H5T_C_S1);
  int ok = mtype >= 0 && H5Tset_size(mtype, H5T_VARIABLE) >= 0 && H5Tset_cset(mtype, H5Tget_cset(ftype)) >= 0 &&
           H5Aread(attr, mtype, &s) >= 0;
  if (mtype >= 0) H5Tclose(mtype);
  if (!ok) return ST_CORRUPT;
  *out = strdup(s ? s : "");
  H5free_memory(s);
  return *out ? ST_OK : ST_NOMEM;
}

static int copy_string_attr(hid_t loc, const char *name, int vlen, upgrade_ctx *c) {
  char *s = NULL, why[256];
  int rc;
  if (!vlen) {
    rc = read_attr_string(loc, name, &s, c->from_path, c->err);
  } else {
    hid_t attr, type;
    if ((rc = open_attr(loc, name, H5T_STRING, &attr, &type, c->from_path, c->err))) return rc;
    rc = read_vlen_string(attr, type, &s);
    H5Tclose(type);
    H5Aclose(attr);
    if (rc)
      return status_set(c->err, rc, "%s: cannot read root attribute %s (%s)", c->from_path, name,
                        h5_reason(why, sizeof why));
  }
  if (rc == ST_OK) rc = write_attr_string(c->to, name, s, c->to_path, c->err);
  free(s);
  return rc;
}

static int copy_int_attr(hid_t loc, const char *name, int is_unsigned, upgrade_ctx *c) {
  union {
    int64_t i;
    uint64_t u;
  } v;
  hid_t mem = is_unsigned ? H5T_NATIVE_UINT64 : H5T_NATIVE_INT64;
  int rc = read_attr(loc, name, mem, &v, c->from_path, c->err);
  if (rc == ST_OK) rc = write_attr(c->to, name, is_unsigned ? H5T_STD_U64LE : H5T_STD_I64LE, mem, &v, c->to_path, c->err);
  return rc;
}

/* Copies one root attribute: strings (either kind) as fixed-length ones,
 * integers as 64-bit ones of their sign (what ddpt writes). */
static herr_t upgrade_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
  (void)info;
  upgrade_ctx *c = data;
  hid_t attr = H5Aopen(loc, name, H5P_DEFAULT), type = attr >= 0 ? H5Aget_type(attr) : -1;
  H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
  int vlen = cls == H5T_STRING && H5Tis_variable_str(type) > 0;
  int is_unsigned = cls == H5T_INTEGER && H5Tget_sign(type) == H5T_SGN_NONE;
  if (type >= 0) H5Tclose(type);
  if (attr >= 0) H5Aclose(attr);
  if (cls == H5T_STRING)
    c->rc = copy_string_attr(loc, name, vlen, c);
  else if (cls == H5T_INTEGER)
    c->rc = copy_int_attr(loc, name, is_unsigned, c);
  else
    c->rc = status_set(c->err, ST_CORRUPT,
                       "%s: root attribute %s is neither a string nor an integer; ddpt checkpoints hold no other",
                       c->from_path, name);
  return c->rc ? -1 : 0;
}

/* Copies one object below the root, as stored (chunks, filters, groups
 * with their creation order), by H5Ocopy. */
static herr_t upgrade_link(hid_t loc, const char *name, const H5L_info_t *info, void *data) {
  upgrade_ctx *c = data;
  char why[256];
  if (info->type != H5L_TYPE_HARD) {
    c->rc = status_set(c->err, ST_CORRUPT, "%s: /%s is a soft or external link; ddpt checkpoints hold none",
                       c->from_path, name);
    return -1;
  }
  if (H5Ocopy(loc, name, c->to, name, H5P_DEFAULT, H5P_DEFAULT) < 0) {
    c->rc = status_set(c->err, ST_CORRUPT, "%s: cannot copy /%s (%s)", c->from_path, name,
                       h5_reason(why, sizeof why));
    return -1;
  }
  return 0;
}

int ckpt_file_upgrade(const char *old_path, const char *new_path, char **err) {
  assert(old_path && new_path);
  h5_quiet();
  char why[256];
  if (access(new_path, F_OK) == 0)
    return status_set(err, ST_INVALID, "%s exists; upgrade writes a new file and never replaces one: choose "
                      "another name", new_path);
  ckpt_file *f = NULL;
  int rc = ckpt_file_open(old_path, &f, err);
  if (rc) return rc;
  hid_t to = -1, gcpl = -1;
  if ((rc = create_h5(new_path, &to, &gcpl, err))) {
    ckpt_file_close(f);
    return rc;
  }
  upgrade_ctx c = {to, old_path, new_path, err, ST_OK};
  hsize_t at = 0;
  if (H5Aiterate2(f->id, H5_INDEX_NAME, H5_ITER_NATIVE, &at, upgrade_attr, &c) < 0 && c.rc == ST_OK)
    c.rc = status_set(err, ST_CORRUPT, "%s: cannot list root attributes (%s)", old_path, h5_reason(why, sizeof why));
  /* Creation order where the file tracks it (ddpt's do), else by name. */
  if (c.rc == ST_OK && H5Literate(f->id, H5_INDEX_CRT_ORDER, H5_ITER_INC, NULL, upgrade_link, &c) < 0 &&
      c.rc == ST_OK) {
    H5Eclear2(H5E_DEFAULT);
    if (H5Literate(f->id, H5_INDEX_NAME, H5_ITER_INC, NULL, upgrade_link, &c) < 0 && c.rc == ST_OK)
      c.rc = status_set(err, ST_CORRUPT, "%s: cannot list its groups (%s)", old_path, h5_reason(why, sizeof why));
  }
  ckpt_file_close(f);
  if ((rc = finish_h5(new_path, to, gcpl, c.rc, err))) return rc;
  if ((rc = ckpt_file_verify(new_path, err))) remove(new_path);
  return rc;
}
