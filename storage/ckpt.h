/* Checkpoints: HDF5 files of named float32 tensors, int64 arrays and root
 * attributes, and the run directory that holds them (atomic commit, LATEST,
 * keep-K pruning, fallback to the newest valid file). docs/checkpoint.md
 * describes the layout and the commit protocol.
 *
 * Conventions:
 *  1. Statuses and messages as util/status.h: an int status, and a malloc'd
 *     one-line message through the last argument `char **err`.
 *  2. Tensors are float32 in C order and PyTorch shape. A ckpt_tensor or
 *     ckpt_array borrows the caller's buffer for the length of one call and
 *     nothing keeps it afterwards; ckpt_writer_begin copies what it needs
 *     before it returns.
 *  3. A tensor name is one HDF5 link name: any bytes but '/', not empty and
 *     not "." ("bert.encoder.layer.0.attention.self.query.weight" is fine).
 *     Paths inside a file are relative to its root: "params/<name>",
 *     "optim/m/<name>", "data/cursor".
 *  4. Each function that hands back memory says who frees it; every free,
 *     clear and close function accepts NULL (or a zeroed struct) as a no-op.
 *  5. Storage knows nothing of models: which names exist and what shapes they
 *     have is the caller's business; storage only checks what it is given.
 */
#ifndef DDPT_STORAGE_CKPT_H
#define DDPT_STORAGE_CKPT_H

#include <stddef.h>
#include <stdint.h>

enum {
  CKPT_FORMAT_VERSION = 1, /* root attribute format_version of the files we write */
  CKPT_NDIM_MAX = 8,
};

#define CKPT_FORMAT_NAME "ddpt-checkpoint"

/* A named tensor. Writing reads data; loading fills it. */
typedef struct ckpt_tensor {
  const char *name;
  int ndim;                     /* 1..CKPT_NDIM_MAX */
  size_t shape[CKPT_NDIM_MAX]; /* all > 0 */
  float *data;                  /* (prod shape) */
} ckpt_tensor;

/* An int64 dataset at a path such as "data/cursor" (rows of shard, epoch,
 * position) or "rng/dropout"; groups on the way are created. */
typedef struct ckpt_array {
  const char *path;
  int ndim;
  size_t shape[CKPT_NDIM_MAX];
  const int64_t *data;
} ckpt_array;

/* An optional string root attribute ("vocab", "labels", ...): what they
 * hold is the caller's business. Names must differ from the fixed ones
 * below (step, config, ...). */
typedef struct ckpt_attr {
  const char *name;
  const char *value;
} ckpt_attr;

/* Root attributes the caller supplies. format, format_version, the ddpt
 * version and the creation time (UTC) are added by the writer. */
typedef struct ckpt_meta {
  int64_t step, tokens_seen, world_size;
  uint64_t seed;
  const char *model_type;  /* "bert" */
  const char *config;      /* the full resolved config text */
  const ckpt_attr *attrs;  /* (n_attrs) optional string attributes */
  size_t n_attrs;
} ckpt_meta;

/* Everything one checkpoint holds. n_optim_m = n_optim_v = 0 writes no
 * /optim group (a weights-only file). */
typedef struct ckpt_content {
  ckpt_meta meta;
  const ckpt_tensor *params;
  size_t n_params;
  const ckpt_tensor *optim_m, *optim_v;
  size_t n_optim_m, n_optim_v;
  const ckpt_array *arrays;
  size_t n_arrays;
} ckpt_content;

/* ---------------------------------------------------------------- one file */

/* Writes c to path, which must not exist, then closes and fsyncs it. Not
 * atomic by itself: ckpt_dir_commit is. On failure path is removed. */
int ckpt_file_write(const char *path, const ckpt_content *c, char **err);

/* The same file written in pieces, for a caller that never holds some
 * tensors whole (each rank of a job holds a range of them). open writes
 * what ckpt_file_write writes, except that a tensor of c whose data is
 * NULL is only created, at its shape, and left pending; put writes count
 * floats as elements [offset, offset + count) of a pending tensor's flat
 * (C-order) data, in any order; close fails (ST_INVALID, naming the
 * tensor) unless every pending tensor was written whole, each element
 * once, then closes and fsyncs as ckpt_file_write. A failed open or close,
 * and abort, remove path; close and abort free w (abort(NULL): no-op). */
typedef struct ckpt_file_writer ckpt_file_writer;
int ckpt_file_writer_open(const char *path, const ckpt_content *c, ckpt_file_writer **out, char **err);
int ckpt_file_writer_put(ckpt_file_writer *w, const char *group, const char *name, size_t offset,
                         size_t count, const float *data, char **err);
int ckpt_file_writer_close(ckpt_file_writer *w, char **err);
void ckpt_file_writer_abort(ckpt_file_writer *w);

typedef struct ckpt_file ckpt_file;

/* Opens an existing checkpoint read-only; close with ckpt_file_close. Fails
 * on a missing, truncated or non-HDF5 file. */
int ckpt_file_open(const char *path, ckpt_file **out, char **err);
void ckpt_file_close(ckpt_file *f);

/* Root attributes as read back. Strings are malloc'd; ckpt_header_clear
 * frees them. */
typedef struct ckpt_header {
  char *format;
  int64_t format_version, step, tokens_seen, world_size;
  uint64_t seed;
  char *model_type, *config, *ddpt_version, *created;
} ckpt_header;

/* Reads the root attributes; fails (ST_CORRUPT/ST_MISMATCH) when one is
 * missing or out of range (step or tokens_seen < 0, world_size < 1),
 * format is not CKPT_FORMAT_NAME or format_version is newer than this
 * build reads. On failure *out is zeroed. */
int ckpt_file_read_header(ckpt_file *f, ckpt_header *out, char **err);
void ckpt_header_clear(ckpt_header *h);

/* Reads the optional string root attribute name (a ckpt_attr written with
 * the file) into *value (malloc'd, caller frees), or sets *value to NULL
 * when the file has no such attribute (files written before it existed). */
int ckpt_file_read_attr(ckpt_file *f, const char *name, char **value, char **err);

typedef enum { CKPT_FLOAT32, CKPT_INT64, CKPT_OTHER } ckpt_dtype;

typedef struct ckpt_entry {
  char *path;       /* "params/bert.embeddings.word_embeddings.weight" */
  ckpt_dtype dtype; /* of the stored data */
  int ndim;
  size_t shape[CKPT_NDIM_MAX];
  size_t count;    /* elements */
  int checksummed; /* nonzero when the Fletcher-32 filter covers it */
} ckpt_entry;

/* Every dataset in the file, in creation order within each group (name
 * order for files written without creation-order tracking). *out is a
 * malloc'd array of *n entries; free with ckpt_entries_free. */
int ckpt_file_list(ckpt_file *f, ckpt_entry **out, size_t *n, char **err);
void ckpt_entries_free(ckpt_entry *e, size_t n);

/* Reads the whole dataset at path into dst, which holds count elements;
 * count must equal the dataset's. A checksum error fails naming path. */
int ckpt_file_read_float(ckpt_file *f, const char *path, float *dst, size_t count, char **err);
int ckpt_file_read_int64(ckpt_file *f, const char *path, int64_t *dst, size_t count, char **err);
/* Reads elements [offset, offset + count) of the float dataset at path's
 * flat (C-order) data into dst (count > 0): only the chunks that hold them
 * are read, each checksum-verified. */
int ckpt_file_read_float_range(ckpt_file *f, const char *path, size_t offset, size_t count, float *dst,
                               char **err);

/* Loading by name from a group ("params" to fine-tune; "optim/m" and
 * "optim/v" too when resuming). Strict: the first target absent from the
 * file, then the first file tensor not among the targets, fails the load.
 * Not strict: those are listed in the report and the rest is loaded. A shape
 * mismatch always fails, naming the tensor and both shapes. Every check runs
 * before any target is written, so a load that fails a check leaves the
 * targets untouched; one that fails reading (a checksum) may have filled some. */
typedef struct ckpt_load_report {
  char **missing;    /* (n_missing) target names the file lacks */
  char **unexpected; /* (n_unexpected) file names no target asked for */
  size_t n_missing, n_unexpected;
  size_t n_loaded;
} ckpt_load_report;

/* report may be NULL; when given it is filled on success and also when a
 * strict load fails on names (ckpt_load_report_clear frees it). */
int ckpt_file_load(ckpt_file *f, const char *group, const ckpt_tensor *targets, size_t n,
                   int strict, ckpt_load_report *report, char **err);
void ckpt_load_report_clear(ckpt_load_report *r);

/* A range of one tensor's flat (C-order) data: elements [offset, offset +
 * count) of tensors[tensor] in ckpt_file_load_ranges. */
typedef struct ckpt_range {
  size_t tensor;
  size_t offset, count;
  float *data; /* (count) */
} ckpt_range;

/* A strict ckpt_file_load of group's tensors (names and shapes; their data
 * is not used) that reads only the given ranges, so that a caller holding
 * a part of each tensor reads no more than that part. */
int ckpt_file_load_ranges(ckpt_file *f, const char *group, const ckpt_tensor *tensors, size_t n,
                          const ckpt_range *ranges, size_t nr, char **err);

/* Opens path and checks it whole: the header, every dataset read in full
 * (so every Fletcher-32 checksum), tensors under params/ and optim/ being
 * checksummed float32, every float finite, and optim/m and optim/v
 * matching params name for name and shape for shape. The message names the
 * first dataset at fault. */
int ckpt_file_verify(const char *path, char **err);

/* Rewrites old_path, a checkpoint whose string attributes are
 * variable-length (ddpt before fixed-length attributes; h5py's str), as
 * new_path (which must not exist) in the current form: every root
 * attribute, strings fixed-length, and every group and dataset copied as
 * stored. The only reader of variable-length strings: those live in HDF5's
 * global heap, which has no checksum, so upgrade only files you trust.
 * new_path is verified whole (ckpt_file_verify) and removed on any failure.
 * An already fixed-length file is copied the same way. */
int ckpt_file_upgrade(const char *old_path, const char *new_path, char **err);

/* ------------------------------------------------------ the run directory */

/* Commits c as RUN_DIR/ckpt-<8-digit step>.h5: written under a hidden
 * temporary name, fsynced, renamed, directory fsynced; then RUN_DIR/LATEST
 * is replaced the same way, then ckpt_dir_prune(run_dir, keep). run_dir is
 * created if missing (one level). *written, when written is not NULL,
 * receives the malloc'd path of the new file (caller frees). A failure in
 * pruning is returned, with a message saying the checkpoint is committed. */
int ckpt_dir_commit(const char *run_dir, const ckpt_content *c, int keep, char **written,
                    char **err);

/* ckpt_dir_commit in pieces, for content with pending tensors
 * (ckpt_file_writer): begin writes c under the commit's temporary name;
 * put writes a range of a pending tensor; end closes the file (failing
 * unless every pending tensor was written whole), fsyncs it and commits it
 * as ckpt_dir_commit does (rename, LATEST, pruning, *written). end and
 * abort (which removes the temporary file) free cm; abort(NULL) is a no-op.
 * One commit at a time per process, as ckpt_dir_commit. */
typedef struct ckpt_commit ckpt_commit;
int ckpt_commit_begin(const char *run_dir, const ckpt_content *c, ckpt_commit **out, char **err);
int ckpt_commit_put(ckpt_commit *cm, const char *group, const char *name, size_t offset, size_t count,
                    const float *data, char **err);
int ckpt_commit_end(ckpt_commit *cm, int keep, char **written, char **err);
void ckpt_commit_abort(ckpt_commit *cm);

/* Keeps the newest keep checkpoints by step (keep <= 0 keeps all), every
 * ckpt-XXXXXXXX.h5 with a ckpt-XXXXXXXX.h5.keep file beside it, and the ones
 * LATEST and BEST name; removes the other ckpt-*.h5 and temporary files left by
 * writers that died. */
int ckpt_dir_prune(const char *run_dir, int keep, char **err);

/* RUN_DIR/BEST: one line naming the checkpoint a fine-tuning run scored
 * best, replaced atomically as LATEST is; pruning never removes its file.
 * set fails (ST_INVALID) unless name is a ckpt-<step>.h5 present in
 * run_dir. read gives *name NULL when there is no BEST, ST_CORRUPT when it
 * is not one checkpoint name. */
int ckpt_dir_set_best(const char *run_dir, const char *name, char **err);
int ckpt_dir_read_best(const char *run_dir, char **name, char **err);

/* The checkpoint to resume from. *path (malloc'd, caller frees) is LATEST's
 * file when it verifies; otherwise the newest ckpt-*.h5 that does, and *note
 * (malloc'd, caller frees; NULL when there was no fallback) says which file
 * was damaged and why and which one is used instead. A directory with
 * neither LATEST nor any ckpt-*.h5 gives ST_OK with *path NULL (a fresh
 * start). ST_CORRUPT when checkpoints exist but none verifies. */
int ckpt_dir_find_latest_valid(const char *run_dir, char **path, char **note, char **err);

/* The run directory's lock: one run at a time writes into it. take
 * creates run_dir if missing (one level) and locks RUN_DIR/LOCK with
 * flock(2), writing "<pid> <host>" into it; when another process holds it,
 * ST_INVALID with a message naming that pid and host. The kernel releases
 * the lock when its process ends however it ends, so a LOCK file left by a
 * dead run is stale and simply taken over; the file itself stays (removing
 * it would let two runs lock two different files). release (NULL: no-op)
 * unlocks. Under MPI only rank 0 takes it. */
typedef struct ckpt_dir_lock ckpt_dir_lock;
int ckpt_dir_lock_take(const char *run_dir, ckpt_dir_lock **out, char **err);
void ckpt_dir_lock_release(ckpt_dir_lock *l);

/* Removes the temporary file of a commit this process is writing, if
 * there is one. Async-signal-safe: for a signal handler about to _exit, so
 * that an abort during a checkpoint write leaves no partial file. */
void ckpt_dir_remove_temp_now(void);

/* ------------------------------------------------- background commit */

typedef struct ckpt_writer ckpt_writer;

/* Copies c (names, attributes, every tensor and array) and starts a thread
 * that runs ckpt_dir_commit(run_dir, copy, keep). Once it returns the caller
 * may change or free everything c points to. Free with ckpt_writer_free.
 * One commit at a time per run directory: temporary names are per process,
 * so wait for (or free) the previous writer before beginning the next. */
int ckpt_writer_begin(const char *run_dir, const ckpt_content *c, int keep, ckpt_writer **out,
                      char **err);
/* Runs ckpt_commit_end(cm, keep) in a thread: the fsync, rename and
 * LATEST of a file already written. Takes cm, even on failure (then
 * aborted). Free the writer with ckpt_writer_free. */
int ckpt_writer_end_commit(ckpt_commit *cm, int keep, ckpt_writer **out, char **err);
/* Nonzero once the commit has finished (successfully or not); never blocks. */
int ckpt_writer_done(const ckpt_writer *w);
/* Blocks until the commit has finished; returns its status and message, and
 * in *written (when not NULL; malloc'd, caller frees) the committed path.
 * Callable once. */
int ckpt_writer_wait(ckpt_writer *w, char **written, char **err);
/* Waits for a commit still running, then frees the writer and its copy. */
void ckpt_writer_free(ckpt_writer *w);

#endif
