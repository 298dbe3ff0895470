/* The run directory: atomic commit of ckpt-<step>.h5 and LATEST, the BEST
 * pointer, keep-K pruning with .keep markers (and never LATEST's or BEST's
 * file), the resume fallback to the newest valid file,
 * and the background writer that commits from a copy taken at call time. */
#include "storage/ckpt.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/file.h"
#include "util/status.h"

/* "ckpt-<at least 8 digits>.h5" exactly; *step is the number. */
static int parse_ckpt_name(const char *name, long long *step) {
  if (strncmp(name, "ckpt-", 5) != 0) return 0;
  const char *p = name + 5;
  size_t digits = strspn(p, "0123456789");
  if (digits < 8 || digits > 18 || strcmp(p + digits, ".h5") != 0) return 0;
  *step = strtoll(p, NULL, 10);
  return 1;
}

/* Temporary names: ".ckpt-XXXXXXXX.h5.tmp-<pid>", ".LATEST.tmp-<pid>" and
 * ".BEST.tmp-<pid>". Returns the pid, or 0 for any other name. */
static long temp_name_pid(const char *name) {
  if (strncmp(name, ".ckpt-", 6) != 0 && strncmp(name, ".LATEST.tmp-", 12) != 0 &&
      strncmp(name, ".BEST.tmp-", 10) != 0)
    return 0;
  const char *t = strstr(name, ".tmp-");
  if (!t || !t[5] || strspn(t + 5, "0123456789") != strlen(t + 5)) return 0;
  return strtol(t + 5, NULL, 10);
}

typedef struct {
  long long step;
  char *name;
} found_ckpt;

static int by_step_descending(const void *a, const void *b) {
  long long x = ((const found_ckpt *)a)->step, y = ((const found_ckpt *)b)->step;
  return (x < y) - (x > y);
}

static void found_free(found_ckpt *f, size_t n) {
  if (!f) return;
  for (size_t i = 0; i < n; i++) free(f[i].name);
  free(f);
}

/* The ckpt-*.h5 files of run_dir, newest step first. */
static int list_ckpts(const char *run_dir, found_ckpt **out, size_t *n, char **err) {
  *out = NULL;
  *n = 0;
  DIR *d = opendir(run_dir);
  if (!d) return status_set(err, ST_IO, "%s: cannot list: %s", run_dir, strerror(errno));
  found_ckpt *f = NULL;
  size_t len = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    long long step;
    if (!parse_ckpt_name(de->d_name, &step)) continue;
    if (len == cap) {
      cap = cap ? 2 * cap : 16;
      found_ckpt *g = realloc(f, cap * sizeof *g);
      if (!g) goto nomem;
      f = g;
    }
    if (!(f[len].name = strdup(de->d_name))) goto nomem;
    f[len++].step = step;
  }
  closedir(d);
  if (len) qsort(f, len, sizeof *f, by_step_descending);
  *out = f;
  *n = len;
  return ST_OK;
nomem:
  closedir(d);
  found_free(f, len);
  return status_set(err, ST_NOMEM, "%s: out of memory listing checkpoints", run_dir);
}

/* The one line of the pointer file (LATEST or BEST) in *name (malloc'd),
 * or NULL when there is no such file. Anything but one plain checkpoint
 * file name is ST_CORRUPT. */
static int read_pointer(const char *run_dir, const char *file, char **name, char **err) {
  *name = NULL;
  char *path = file_path_join(run_dir, file);
  if (!path) return status_set(err, ST_NOMEM, "out of memory");
  FILE *fp = fopen(path, "r");
  if (!fp) {
    int e = errno;
    int rc = e == ENOENT ? ST_OK : status_set(err, ST_IO, "%s: cannot read: %s", path, strerror(e));
    free(path);
    return rc;
  }
  char buf[512];
  size_t got = fread(buf, 1, sizeof buf - 1, fp);
  fclose(fp);
  buf[got] = '\0';
  size_t len = strcspn(buf, "\n");
  int ok = len > 0 && (buf[len] == '\0' || buf[len + 1] == '\0') && !memchr(buf, '/', len) &&
           strlen(buf) == got;
  buf[len] = '\0';
  long long step;
  if (!ok || !parse_ckpt_name(buf, &step)) {
    int rc = status_set(err, ST_CORRUPT, "%s does not hold one checkpoint file name", path);
    free(path);
    return rc;
  }
  free(path);
  *name = strdup(buf);
  return *name ? ST_OK : status_set(err, ST_NOMEM, "out of memory");
}

static int read_latest(const char *run_dir, char **name, char **err) {
  return read_pointer(run_dir, "LATEST", name, err);
}

/* Replaces the pointer file (LATEST or BEST) atomically with name's line. */
static int write_pointer(const char *run_dir, const char *file, const char *name, char **err) {
  char *pointer = file_path_join(run_dir, file);
  size_t len = strlen(name);
  char *line = malloc(len + 1);
  int rc;
  if (!pointer || !line) {
    rc = status_set(err, ST_NOMEM, "out of memory");
  } else {
    memcpy(line, name, len);
    line[len] = '\n';
    rc = file_write_atomic(pointer, line, len + 1, err);
  }
  free(line);
  free(pointer);
  return rc;
}

int ckpt_dir_set_best(const char *run_dir, const char *name, char **err) {
  assert(run_dir && name);
  long long step;
  if (!parse_ckpt_name(name, &step))
    return status_set(err, ST_INVALID, "%s: BEST must name a ckpt-<step>.h5 of the directory, not '%s'", run_dir,
                      name);
  char *path = file_path_join(run_dir, name);
  int there = path && access(path, F_OK) == 0;
  free(path);
  if (!there) return status_set(err, ST_INVALID, "%s: BEST cannot name %s: no such checkpoint there", run_dir, name);
  return write_pointer(run_dir, "BEST", name, err);
}

int ckpt_dir_read_best(const char *run_dir, char **name, char **err) {
  return read_pointer(run_dir, "BEST", name, err);
}

/* Test hook: tests/train_resume.sh must kill a process provably inside a
 * checkpoint write. With DDPT_TEST_CKPT_HOLD=STEP:MARKER in the environment
 * the commit of checkpoint STEP, its temporary file written and not yet
 * renamed, creates the file MARKER and waits there until the process is
 * killed. Without the variable it does nothing. */
static void hold_commit_for_test(long long step) {
  const char *hold = getenv("DDPT_TEST_CKPT_HOLD");
  long long at;
  int used = 0;
  if (!hold || sscanf(hold, "%lld:%n", &at, &used) != 1 || used == 0 || at != step) return;
  int fd = open(hold + used, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd >= 0) close(fd);
  for (;;) pause();
}

/* The temporary file a commit of this process is writing, for
 * ckpt_dir_remove_temp_now, which a signal handler may call at any moment:
 * the path is complete before g_temp_set says so, and g_temp_set is cleared
 * before the path changes or the file is renamed. */
static char g_temp_path[4096];
static atomic_int g_temp_set;

static void track_temp(const char *path) {
  atomic_store(&g_temp_set, 0);
  if (!path || strlen(path) >= sizeof g_temp_path) return;
  memcpy(g_temp_path, path, strlen(path) + 1);
  atomic_store(&g_temp_set, 1);
}

void ckpt_dir_remove_temp_now(void) {
  if (atomic_load(&g_temp_set)) unlink(g_temp_path);
}

struct ckpt_commit {
  char *run_dir, *tmp, *final;
  long long step;
  ckpt_file_writer *file;
};

static void commit_free(ckpt_commit *cm) {
  free(cm->run_dir);
  free(cm->tmp);
  free(cm->final);
  free(cm);
}

void ckpt_commit_abort(ckpt_commit *cm) {
  if (!cm) return;
  ckpt_file_writer_abort(cm->file);
  track_temp(NULL);
  commit_free(cm);
}

int ckpt_commit_begin(const char *run_dir, const ckpt_content *c, ckpt_commit **out, char **err) {
  assert(run_dir && c && out);
  *out = NULL;
  if (c->meta.step < 0) return status_set(err, ST_INVALID, "checkpoint step %lld is negative", (long long)c->meta.step);
  if (file_mkdirs(run_dir) != 0)
    return status_set(err, ST_IO, "%s: cannot create run directory: %s", run_dir, strerror(errno));
  char name[64], tmp_name[96];
  snprintf(name, sizeof name, "ckpt-%08lld.h5", (long long)c->meta.step);
  snprintf(tmp_name, sizeof tmp_name, ".%s.tmp-%ld", name, (long)getpid());
  ckpt_commit *cm = calloc(1, sizeof *cm);
  if (!cm || !(cm->run_dir = strdup(run_dir)) || !(cm->tmp = file_path_join(run_dir, tmp_name)) ||
      !(cm->final = file_path_join(run_dir, name))) {
    if (cm) commit_free(cm);
    return status_set(err, ST_NOMEM, "out of memory");
  }
  cm->step = (long long)c->meta.step;
  remove(cm->tmp);
  track_temp(cm->tmp);
  int rc = ckpt_file_writer_open(cm->tmp, c, &cm->file, err);
  if (rc) {
    ckpt_commit_abort(cm);
    return rc;
  }
  *out = cm;
  return ST_OK;
}

int ckpt_commit_put(ckpt_commit *cm, const char *group, const char *name, size_t offset, size_t count,
                    const float *data, char **err) {
  assert(cm && cm->file);
  return ckpt_file_writer_put(cm->file, group, name, offset, count, data, err);
}

int ckpt_commit_end(ckpt_commit *cm, int keep, char **written, char **err) {
  assert(cm && cm->file);
  int rc = ckpt_file_writer_close(cm->file, err);
  cm->file = NULL;
  if (rc) goto fail;
  hold_commit_for_test(cm->step);
  track_temp(NULL);
  if (rename(cm->tmp, cm->final) != 0) {
    rc = status_set(err, ST_IO, "%s: cannot rename to %s: %s", cm->tmp, cm->final, strerror(errno));
    remove(cm->tmp);
    goto fail;
  }
  const char *name = strrchr(cm->final, '/') ? strrchr(cm->final, '/') + 1 : cm->final;
  if ((rc = file_fsync_dir(cm->run_dir, err))) goto fail;
  if ((rc = write_pointer(cm->run_dir, "LATEST", name, err))) goto fail;
  if ((rc = ckpt_dir_prune(cm->run_dir, keep, err))) {
    status_wrap(err, rc, "%s is committed, but pruning older checkpoints failed", cm->final);
    goto fail;
  }
  if (written) {
    *written = cm->final;
    cm->final = NULL;
  }
  commit_free(cm);
  return ST_OK;
fail:
  ckpt_commit_abort(cm);
  return rc;
}

int ckpt_dir_commit(const char *run_dir, const ckpt_content *c, int keep, char **written, char **err) {
  ckpt_commit *cm;
  int rc = ckpt_commit_begin(run_dir, c, &cm, err);
  return rc ? rc : ckpt_commit_end(cm, keep, written, err);
}

static int has_keep_marker(const char *run_dir, const char *name) {
  char marker[256];
  snprintf(marker, sizeof marker, "%s.keep", name);
  char *p = file_path_join(run_dir, marker);
  int yes = p && access(p, F_OK) == 0;
  free(p);
  return yes;
}

int ckpt_dir_prune(const char *run_dir, int keep, char **err) {
  assert(run_dir);
  found_ckpt *f = NULL;
  size_t n = 0;
  char *latest = NULL, *best = NULL;
  int rc = read_latest(run_dir, &latest, err);
  if (rc) return rc;
  /* A damaged BEST protects nothing but must not stop pruning: it is
   * rewritten at the next evaluation. */
  char *ignored = NULL;
  if (read_pointer(run_dir, "BEST", &best, &ignored) != ST_OK) best = NULL;
  free(ignored);
  if ((rc = list_ckpts(run_dir, &f, &n, err))) goto done;
  int removed = 0;
  for (size_t i = 0; keep > 0 && i < n; i++) {
    if (i < (size_t)keep || (latest && strcmp(f[i].name, latest) == 0) || (best && strcmp(f[i].name, best) == 0) ||
        has_keep_marker(run_dir, f[i].name))
      continue;
    char *p = file_path_join(run_dir, f[i].name);
    if (!p || (remove(p) != 0 && errno != ENOENT)) {
      rc = status_set(err, ST_IO, "%s: cannot remove old checkpoint %s: %s", run_dir, f[i].name,
                      p ? strerror(errno) : "out of memory");
      free(p);
      goto done;
    }
    free(p);
    removed = 1;
  }
  /* Temporary files of a writer that died (another pid) are never committed. */
  DIR *d = opendir(run_dir);
  if (!d) {
    rc = status_set(err, ST_IO, "%s: cannot list: %s", run_dir, strerror(errno));
    goto done;
  }
  struct dirent *de;
  while ((de = readdir(d))) {
    long pid = temp_name_pid(de->d_name);
    if (pid == 0 || pid == (long)getpid()) continue;
    char *p = file_path_join(run_dir, de->d_name);
    if (p && remove(p) == 0) removed = 1;
    free(p);
  }
  closedir(d);
  if (removed) rc = file_fsync_dir(run_dir, err);
done:
  found_free(f, n);
  free(latest);
  free(best);
  return rc;
}

int ckpt_dir_find_latest_valid(const char *run_dir, char **path, char **note, char **err) {
  assert(run_dir && path && note);
  *path = NULL;
  *note = NULL;
  char *latest = NULL, *latest_why = NULL, *newest_why = NULL, *lp = NULL;
  found_ckpt *f = NULL;
  size_t n = 0, damaged = 0;
  int latest_rc = read_latest(run_dir, &latest, &latest_why);
  int rc = list_ckpts(run_dir, &f, &n, err);
  if (rc) goto done;
  if (latest) {
    if (!(lp = file_path_join(run_dir, latest))) goto nomem;
    if (ckpt_file_verify(lp, &latest_why) == ST_OK) {
      *path = lp;
      lp = NULL;
      goto done;
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (latest && strcmp(f[i].name, latest) == 0) continue;
    char *p = file_path_join(run_dir, f[i].name), *why = NULL;
    if (!p) goto nomem;
    if (ckpt_file_verify(p, &why) == ST_OK) {
      *path = p;
      break;
    }
    free(p);
    if (!newest_why) newest_why = why;
    else free(why);
    damaged++;
  }
  if (*path) {
    char skipped[96] = "";
    if (damaged)
      snprintf(skipped, sizeof skipped, " (%zu newer file%s also failed verification)", damaged,
               damaged == 1 ? "" : "s");
    if (latest)
      status_set(note, ST_CORRUPT, "LATEST names %s, which fails verification (%s); resuming from %s, the newest valid checkpoint%s",
                 lp, latest_why, *path, skipped);
    else if (latest_rc)
      status_set(note, ST_CORRUPT, "LATEST is unusable (%s); resuming from %s, the newest valid checkpoint%s",
                 latest_why, *path, skipped);
    else
      status_set(note, ST_CORRUPT, "%s has no LATEST; resuming from %s, the newest valid checkpoint%s", run_dir,
                 *path, skipped);
    goto done;
  }
  if (!latest && latest_rc == ST_OK && n == 0) goto done;
  if (latest)
    rc = status_set(err, ST_CORRUPT, "%s: no valid checkpoint: LATEST names %s, which fails verification (%s); %zu other checkpoint file%s fail%s too%s%s",
                    run_dir, lp, latest_why, damaged, damaged == 1 ? "" : "s", damaged == 1 ? "s" : "",
                    newest_why ? "; newest: " : "", newest_why ? newest_why : "");
  else
    rc = status_set(err, ST_CORRUPT, "%s: no valid checkpoint: %s; %zu checkpoint file%s fail verification%s%s", run_dir,
                    latest_rc ? latest_why : "no LATEST", damaged, damaged == 1 ? "" : "s",
                    newest_why ? "; newest: " : "", newest_why ? newest_why : "");
  goto done;
nomem:
  rc = status_set(err, ST_NOMEM, "out of memory");
done:
  if (rc) {
    free(*path);
    *path = NULL;
  }
  free(lp);
  free(latest);
  free(latest_why);
  free(newest_why);
  found_free(f, n);
  return rc;
}

/* ------------------------------------------------------------- the lock */

struct ckpt_dir_lock {
  int fd;
};

/* "pid P on host H" from a LOCK file's line "P H", for the refusal. */
static void describe_holder(int fd, char *buf, size_t size) {
  char line[320] = "";
  ssize_t n = pread(fd, line, sizeof line - 1, 0);
  line[n > 0 ? n : 0] = '\0';
  long pid = 0;
  char host[256] = "";
  if (sscanf(line, "%ld %255s", &pid, host) == 2) snprintf(buf, size, "pid %ld on host %s", pid, host);
  else snprintf(buf, size, "a process that has not yet written its pid and host");
}

int ckpt_dir_lock_take(const char *run_dir, ckpt_dir_lock **out, char **err) {
  assert(run_dir && out);
  *out = NULL;
  if (file_mkdirs(run_dir) != 0)
    return status_set(err, ST_IO, "%s: cannot create run directory: %s", run_dir, strerror(errno));
  char *path = file_path_join(run_dir, "LOCK");
  if (!path) return status_set(err, ST_NOMEM, "out of memory");
  int rc = ST_OK;
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) {
    rc = status_set(err, ST_IO, "%s: cannot open: %s", path, strerror(errno));
    goto done;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    char holder[320];
    if (e == EWOULDBLOCK) {
      describe_holder(fd, holder, sizeof holder);
      rc = status_set(err, ST_INVALID, "%s is in use by another ddpt run (%s; %s): wait for it to end or stop it, "
                      "or choose another --run-dir", run_dir, holder, path);
    } else {
      rc = status_set(err, ST_IO, "%s: cannot lock: %s (a file system without locks? choose a --run-dir on "
                      "one with them)", path, strerror(e));
    }
    close(fd);
    goto done;
  }
  /* Ours now: whoever wrote the line before has exited (the kernel drops
   * a dead process's lock), so the line is replaced. */
  char line[320], host[256] = "?";
  if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "?");
  host[sizeof host - 1] = '\0';
  int len = snprintf(line, sizeof line, "%ld %s\n", (long)getpid(), host);
  if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len) {
    rc = status_set(err, ST_IO, "%s: cannot write: %s", path, strerror(errno));
    close(fd);
    goto done;
  }
  ckpt_dir_lock *l = malloc(sizeof *l);
  if (!l) {
    close(fd);
    rc = status_set(err, ST_NOMEM, "out of memory");
    goto done;
  }
  l->fd = fd;
  *out = l;
done:
  free(path);
  return rc;
}

void ckpt_dir_lock_release(ckpt_dir_lock *l) {
  if (!l) return;
  close(l->fd);
  free(l);
}

/* ------------------------------------------------------- background commit */

struct ckpt_writer {
  pthread_t thread;
  atomic_int done;
  int joined;
  char *run_dir;
  int keep;
  ckpt_commit *commit; /* ckpt_writer_end_commit: the file to commit */
  ckpt_content c;      /* ckpt_writer_begin: points into the copies below */
  ckpt_tensor *tensors;
  ckpt_array *arrays;
  ckpt_attr *attrs;
  char **names; /* (n_names) every name and string the copy owns */
  size_t n_names;
  float *floats;
  int64_t *ints;
  int rc;
  char *err, *written;
};

static size_t shape_count(int ndim, const size_t *shape) {
  size_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

static char *writer_keep_string(ckpt_writer *w, const char *s) {
  char *copy = strdup(s ? s : "");
  if (copy) w->names[w->n_names++] = copy;
  return copy;
}

static void writer_release_copy(ckpt_writer *w) {
  for (size_t i = 0; i < w->n_names; i++) free(w->names[i]);
  free(w->names);
  free(w->tensors);
  free(w->arrays);
  free(w->attrs);
  free(w->floats);
  free(w->ints);
  w->attrs = NULL;
  w->names = NULL;
  w->n_names = 0;
  w->tensors = NULL;
  w->arrays = NULL;
  w->floats = NULL;
  w->ints = NULL;
}

static int writer_copy(ckpt_writer *w, const ckpt_content *c) {
  size_t nt = c->n_params + c->n_optim_m + c->n_optim_v, nf = 0, ni = 0;
  const ckpt_tensor *groups[3] = {c->params, c->optim_m, c->optim_v};
  const size_t counts[3] = {c->n_params, c->n_optim_m, c->n_optim_v};
  for (int g = 0; g < 3; g++)
    for (size_t i = 0; i < counts[g]; i++) nf += shape_count(groups[g][i].ndim, groups[g][i].shape);
  for (size_t i = 0; i < c->n_arrays; i++) ni += shape_count(c->arrays[i].ndim, c->arrays[i].shape);
  w->tensors = calloc(nt + 1, sizeof *w->tensors);
  w->arrays = calloc(c->n_arrays + 1, sizeof *w->arrays);
  w->attrs = calloc(c->meta.n_attrs + 1, sizeof *w->attrs);
  w->names = calloc(nt + c->n_arrays + 2 + 2 * c->meta.n_attrs, sizeof *w->names);
  w->floats = malloc((nf + 1) * sizeof *w->floats);
  w->ints = malloc((ni + 1) * sizeof *w->ints);
  if (!w->tensors || !w->arrays || !w->attrs || !w->names || !w->floats || !w->ints) return ST_NOMEM;
  w->c.meta = c->meta;
  if (!(w->c.meta.model_type = writer_keep_string(w, c->meta.model_type)) ||
      !(w->c.meta.config = writer_keep_string(w, c->meta.config)))
    return ST_NOMEM;
  for (size_t i = 0; i < c->meta.n_attrs; i++)
    if (!(w->attrs[i].name = writer_keep_string(w, c->meta.attrs[i].name)) ||
        !(w->attrs[i].value = writer_keep_string(w, c->meta.attrs[i].value)))
      return ST_NOMEM;
  w->c.meta.attrs = w->attrs;
  ckpt_tensor *t = w->tensors;
  float *fp = w->floats;
  for (int g = 0; g < 3; g++) {
    ckpt_tensor *start = t;
    for (size_t i = 0; i < counts[g]; i++, t++) {
      *t = groups[g][i];
      if (!(t->name = writer_keep_string(w, groups[g][i].name))) return ST_NOMEM;
      size_t k = shape_count(t->ndim, t->shape);
      memcpy(fp, groups[g][i].data, k * sizeof *fp);
      t->data = fp;
      fp += k;
    }
    if (g == 0) w->c.params = start;
    if (g == 1) w->c.optim_m = start;
    if (g == 2) w->c.optim_v = start;
  }
  w->c.n_params = c->n_params;
  w->c.n_optim_m = c->n_optim_m;
  w->c.n_optim_v = c->n_optim_v;
  int64_t *ip = w->ints;
  for (size_t i = 0; i < c->n_arrays; i++) {
    ckpt_array *a = &w->arrays[i];
    *a = c->arrays[i];
    if (!(a->path = writer_keep_string(w, c->arrays[i].path))) return ST_NOMEM;
    size_t k = shape_count(a->ndim, a->shape);
    memcpy(ip, c->arrays[i].data, k * sizeof *ip);
    a->data = ip;
    ip += k;
  }
  w->c.arrays = w->arrays;
  w->c.n_arrays = c->n_arrays;
  return ST_OK;
}

static void *writer_main(void *arg) {
  ckpt_writer *w = arg;
  if (w->commit) w->rc = ckpt_commit_end(w->commit, w->keep, &w->written, &w->err);
  else w->rc = ckpt_dir_commit(w->run_dir, &w->c, w->keep, &w->written, &w->err);
  w->commit = NULL;
  /* The copy can be as large as the model and its moments: give it back now. */
  writer_release_copy(w);
  atomic_store(&w->done, 1);
  return NULL;
}

int ckpt_writer_begin(const char *run_dir, const ckpt_content *c, int keep, ckpt_writer **out, char **err) {
  assert(run_dir && c && out);
  *out = NULL;
  ckpt_writer *w = calloc(1, sizeof *w);
  if (!w) return status_set(err, ST_NOMEM, "out of memory for a checkpoint writer");
  atomic_init(&w->done, 0);
  w->keep = keep;
  if (!(w->run_dir = strdup(run_dir)) || writer_copy(w, c) != ST_OK) {
    writer_release_copy(w);
    free(w->run_dir);
    free(w);
    return status_set(err, ST_NOMEM, "out of memory copying checkpoint step %lld for the background writer",
                      (long long)c->meta.step);
  }
  int e = pthread_create(&w->thread, NULL, writer_main, w);
  if (e != 0) {
    writer_release_copy(w);
    free(w->run_dir);
    free(w);
    return status_set(err, ST_IO, "cannot start the checkpoint writer thread: %s", strerror(e));
  }
  *out = w;
  return ST_OK;
}

int ckpt_writer_end_commit(ckpt_commit *cm, int keep, ckpt_writer **out, char **err) {
  assert(cm && out);
  *out = NULL;
  ckpt_writer *w = calloc(1, sizeof *w);
  if (!w) {
    ckpt_commit_abort(cm);
    return status_set(err, ST_NOMEM, "out of memory for a checkpoint writer");
  }
  atomic_init(&w->done, 0);
  w->keep = keep;
  w->commit = cm;
  int e = pthread_create(&w->thread, NULL, writer_main, w);
  if (e != 0) {
    ckpt_commit_abort(cm);
    free(w);
    return status_set(err, ST_IO, "cannot start the checkpoint writer thread: %s", strerror(e));
  }
  *out = w;
  return ST_OK;
}

int ckpt_writer_done(const ckpt_writer *w) {
  assert(w);
  return atomic_load(&w->done);
}

int ckpt_writer_wait(ckpt_writer *w, char **written, char **err) {
  assert(w && !w->joined);
  pthread_join(w->thread, NULL);
  w->joined = 1;
  if (written) {
    *written = w->written;
    w->written = NULL;
  }
  if (w->rc) {
    if (err) {
      free(*err);
      *err = w->err;
      w->err = NULL;
    }
  }
  return w->rc;
}

void ckpt_writer_free(ckpt_writer *w) {
  if (!w) return;
  if (!w->joined) pthread_join(w->thread, NULL);
  writer_release_copy(w);
  free(w->run_dir);
  free(w->err);
  free(w->written);
  free(w);
}
