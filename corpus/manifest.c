/* manifest.json through cJSON: written via temp file + fsync + rename +
 * directory fsync, read back with every field checked, since the reader
 * trusts it for shapes and counts. */
#include "corpus/manifest.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corpus/record.h"
#include "util/file.h"
#include "util/status.h"

static const char *const task_names[] = {"pretrain", "classify", "tag"};

const char *manifest_task_name(manifest_task t) {
  return (size_t)t < sizeof task_names / sizeof *task_names ? task_names[t] : "?";
}

int manifest_task_parse(const char *name) {
  for (size_t i = 0; i < sizeof task_names / sizeof *task_names; i++)
    if (strcmp(name, task_names[i]) == 0) return (int)i;
  return -1;
}

static cJSON *file_list(const manifest_file *f, size_t n) {
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; arr && i < n; i++) {
    cJSON *o = cJSON_CreateObject();
    if (!o) break;
    cJSON_AddItemToArray(arr, o);
    cJSON_AddStringToObject(o, "name", f[i].name);
    cJSON_AddNumberToObject(o, "size", (double)f[i].size);
    cJSON_AddNumberToObject(o, "crc32c", f[i].crc32c);
    cJSON_AddNumberToObject(o, "first", (double)f[i].first);
    cJSON_AddNumberToObject(o, "last", (double)f[i].last);
  }
  return arr;
}

static cJSON *shard_list(const manifest_shard *s, size_t n) {
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; arr && i < n; i++) {
    cJSON *o = cJSON_CreateObject();
    if (!o) break;
    cJSON_AddItemToArray(arr, o);
    cJSON_AddStringToObject(o, "name", s[i].name);
    cJSON_AddNumberToObject(o, "sequences", (double)s[i].sequences);
    cJSON_AddNumberToObject(o, "tokens", (double)s[i].tokens);
    cJSON_AddNumberToObject(o, "max_id", s[i].max_id);
    cJSON_AddItemToObject(o, "files", file_list(s[i].files, s[i].num_files));
  }
  return arr;
}

static cJSON *count_list(const uint64_t *counts, size_t n) {
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; arr && i < n; i++)
    cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)counts[i]));
  return arr;
}

/* A labelled corpus's fields: its label set and how often each label occurs. */
static void add_labels(cJSON *root, const manifest *m) {
  cJSON *labels = cJSON_AddArrayToObject(root, "labels");
  for (size_t i = 0; labels && i < m->num_labels; i++)
    cJSON_AddItemToArray(labels, cJSON_CreateString(m->labels[i]));
  if (m->task == MANIFEST_TASK_TAG)
    cJSON_AddBoolToObject(root, "label_all_pieces", m->label_all_pieces);
  cJSON *counts = cJSON_AddObjectToObject(root, "label_counts");
  if (counts) {
    cJSON_AddItemToObject(counts, "train", count_list(m->label_counts, m->num_labels));
    cJSON_AddItemToObject(counts, "valid", count_list(m->label_counts + m->num_labels,
                                                      m->num_labels));
  }
  cJSON_AddNumberToObject(root, "truncated", (double)m->truncated);
}

static char *manifest_to_json(const manifest *m) {
  cJSON *root = cJSON_CreateObject();
  if (!root) return NULL;
  cJSON_AddStringToObject(root, "format", MANIFEST_FORMAT);
  cJSON_AddNumberToObject(root, "format_version", MANIFEST_VERSION);
  cJSON_AddStringToObject(root, "task", manifest_task_name(m->task));
  cJSON_AddStringToObject(root, "tool", m->tool);
  cJSON_AddStringToObject(root, "created", m->created);
  cJSON_AddNumberToObject(root, "seq_len", (double)m->seq_len);
  cJSON_AddNumberToObject(root, "id_bytes", m->id_bytes);
  cJSON_AddBoolToObject(root, "nsp", m->nsp);
  cJSON_AddStringToObject(root, "input_format", m->input_format);
  /* A 64-bit seed does not survive a JSON double: stored as a string. */
  char seed[24];
  snprintf(seed, sizeof seed, "%" PRIu64, m->seed);
  cJSON_AddStringToObject(root, "seed", seed);
  cJSON_AddNumberToObject(root, "valid_fraction", m->valid_fraction);
  cJSON *v = cJSON_AddObjectToObject(root, "vocab");
  if (v) {
    cJSON_AddStringToObject(v, "file", MANIFEST_VOCAB_FILE);
    cJSON_AddNumberToObject(v, "size", (double)m->vocab_size);
    cJSON_AddStringToObject(v, "sha256", m->vocab_sha256);
    cJSON_AddBoolToObject(v, "lowercase", m->lowercase);
    cJSON_AddNumberToObject(v, "cls_id", m->cls_id);
    cJSON_AddNumberToObject(v, "sep_id", m->sep_id);
    cJSON_AddNumberToObject(v, "mask_id", m->mask_id);
    cJSON_AddNumberToObject(v, "pad_id", m->pad_id);
    cJSON_AddNumberToObject(v, "unk_id", m->unk_id);
  }
  cJSON *t = cJSON_AddObjectToObject(root, "totals");
  if (t) {
    cJSON_AddNumberToObject(t, "documents", (double)m->documents);
    cJSON_AddNumberToObject(t, "sequences", (double)m->sequences);
    cJSON_AddNumberToObject(t, "tokens", (double)m->tokens);
    cJSON_AddNumberToObject(t, "unk_tokens", (double)m->unk_tokens);
    cJSON_AddNumberToObject(t, "bytes_in", (double)m->bytes_in);
    cJSON_AddNumberToObject(t, "invalid_utf8_bytes", (double)m->invalid_utf8_bytes);
  }
  cJSON_AddItemToObject(root, "shards", shard_list(m->shards, m->num_shards));
  cJSON_AddItemToObject(root, "valid_shards", shard_list(m->valid, m->num_valid));
  if (m->task != MANIFEST_TASK_PRETRAIN) add_labels(root, m);
  char *text = cJSON_Print(root);
  cJSON_Delete(root);
  return text;
}

int manifest_write(const char *dir, const manifest *m, char **err) {
  char *path = file_path_join(dir, MANIFEST_FILE), *text = path ? manifest_to_json(m) : NULL;
  size_t len = text ? strlen(text) : 0;
  char *line = text ? realloc(text, len + 2) : NULL;
  int rc;
  if (!line) {
    free(text); /* realloc failed, or text is NULL */
    rc = status_set(err, ST_NOMEM, "out of memory formatting %s/%s", dir, MANIFEST_FILE);
  } else {
    line[len] = '\n';
    rc = file_write_atomic(path, line, len + 1, err);
    free(line);
  }
  free(path);
  return rc;
}

/* ------------------------------------------------------------------ read */

typedef struct reader_ctx {
  const char *path;
  char **err;
  int rc;
} reader_ctx;

static const cJSON *need(reader_ctx *c, const cJSON *obj, const char *key, int want_string) {
  if (c->rc) return NULL;
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
  int ok = item && (want_string ? cJSON_IsString(item) : cJSON_IsNumber(item) || cJSON_IsBool(item));
  if (!ok) {
    c->rc = status_set(c->err, ST_CORRUPT, "%s: field \"%s\" is missing or not a %s", c->path,
                       key, want_string ? "string" : "number");
    return NULL;
  }
  return item;
}

static double num(reader_ctx *c, const cJSON *obj, const char *key) {
  const cJSON *item = need(c, obj, key, 0);
  if (!item) return 0;
  return cJSON_IsBool(item) ? (cJSON_IsTrue(item) ? 1 : 0) : item->valuedouble;
}

/* JSON numbers are doubles: integers are exact up to 2^53. */
#define MANIFEST_WHOLE_MAX 9007199254740992.0

/* A whole number (or a bool, as 0 or 1) from 0 to max: anything else,
 * which no cast may take (a negative or huge double), is an error. */
static uint64_t whole(reader_ctx *c, const cJSON *obj, const char *key, double max) {
  double v = num(c, obj, key);
  if (c->rc) return 0;
  if (!(v >= 0 && v <= max && v == floor(v))) {
    c->rc = status_set(c->err, ST_CORRUPT, "%s: field \"%s\" is %g, not a whole number from 0 to "
                       "%.0f", c->path, key, v, max);
    return 0;
  }
  return (uint64_t)v;
}

static void str(reader_ctx *c, const cJSON *obj, const char *key, char *buf, size_t size) {
  const cJSON *item = need(c, obj, key, 1);
  if (!item) return;
  const char *v = item->valuestring;
  int control = 0;
  for (const char *p = v; *p; p++) control |= (unsigned char)*p < 0x20 || *p == 0x7f;
  if (strlen(v) >= size)
    c->rc = status_set(c->err, ST_CORRUPT, "%s: field \"%s\" is too long", c->path, key);
  else if (control) /* it would break the one-line messages that quote it */
    c->rc = status_set(c->err, ST_CORRUPT, "%s: field \"%s\" holds a control character",
                       c->path, key);
  else
    strcpy(buf, v);
}

/* A name inside the corpus: no path separator, not hidden, not empty. */
static int plain_name(const char *name) {
  return name[0] != '\0' && name[0] != '.' && !strchr(name, '/');
}

/* s's "files": each a plain name, together covering keys 0..sequences-1 in
 * order without gaps. */
static void read_files(reader_ctx *c, const cJSON *o, const char *list, manifest_shard *s) {
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "files");
  if (c->rc) return;
  size_t count = cJSON_IsArray(arr) ? (size_t)cJSON_GetArraySize(arr) : 0;
  if (count == 0 || !(s->files = calloc(count, sizeof *s->files))) {
    c->rc = count ? status_set(c->err, ST_NOMEM, "%s: out of memory", c->path)
                  : status_set(c->err, ST_CORRUPT, "%s: shard %s (%s): \"files\" is missing "
                               "or empty", c->path, s->name, list);
    return;
  }
  uint64_t next = 0;
  const cJSON *x;
  cJSON_ArrayForEach(x, arr) {
    manifest_file *f = &s->files[s->num_files++];
    str(c, x, "name", f->name, sizeof f->name);
    f->size = (uint64_t)whole(c, x, "size", MANIFEST_WHOLE_MAX);
    f->crc32c = (uint32_t)whole(c, x, "crc32c", UINT32_MAX);
    f->first = (uint64_t)whole(c, x, "first", MANIFEST_WHOLE_MAX);
    f->last = (uint64_t)whole(c, x, "last", MANIFEST_WHOLE_MAX);
    if (c->rc) return;
    if (!plain_name(f->name) || f->first != next || f->last < f->first) {
      c->rc = status_set(c->err, ST_CORRUPT, "%s: shard %s (%s): file \"%s\" holds keys "
                         "%llu..%llu, but the next key is %llu: the manifest is damaged or edited; "
                         "reshard", c->path, s->name, list, f->name, (unsigned long long)f->first,
                         (unsigned long long)f->last, (unsigned long long)next);
      return;
    }
    next = f->last + 1;
  }
  if (next != s->sequences)
    c->rc = status_set(c->err, ST_CORRUPT, "%s: shard %s (%s): its files hold %llu records, but "
                       "it says \"sequences\": %llu: the manifest is damaged or edited; reshard",
                       c->path, s->name, list, (unsigned long long)next,
                       (unsigned long long)s->sequences);
}

static manifest_shard *read_shards(reader_ctx *c, const cJSON *root, const char *key, size_t *n) {
  *n = 0;
  if (c->rc) return NULL;
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, key);
  if (!cJSON_IsArray(arr)) {
    c->rc = status_set(c->err, ST_CORRUPT, "%s: \"%s\" is missing or not a list", c->path, key);
    return NULL;
  }
  size_t count = (size_t)cJSON_GetArraySize(arr);
  manifest_shard *s = calloc(count ? count : 1, sizeof *s);
  if (!s) {
    c->rc = status_set(c->err, ST_NOMEM, "%s: out of memory", c->path);
    return NULL;
  }
  size_t i = 0;
  const cJSON *o;
  cJSON_ArrayForEach(o, arr) {
    str(c, o, "name", s[i].name, sizeof s[i].name);
    s[i].sequences = (uint64_t)whole(c, o, "sequences", MANIFEST_WHOLE_MAX);
    s[i].tokens = (uint64_t)whole(c, o, "tokens", MANIFEST_WHOLE_MAX);
    s[i].max_id = (uint32_t)whole(c, o, "max_id", UINT32_MAX);
    if (!c->rc && (!plain_name(s[i].name) || s[i].sequences == 0))
      c->rc = status_set(c->err, ST_CORRUPT, "%s: %s entry %zu (\"%s\") is invalid", c->path,
                         key, i, s[i].name);
    read_files(c, o, key, &s[i]);
    i++;
  }
  *n = count;
  return s;
}

/* The whole of path (dir's manifest.json), NUL-terminated, in *text
 * (malloc'd). */
static int read_text(const char *path, const char *dir, char **text, char **err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errno == ENOENT)
      return status_set(err, ST_INVALID,
                        "%s is an incomplete corpus: it has no %s (ddpt shard did not finish); "
                        "rerun ddpt shard with --overwrite",
                        dir, MANIFEST_FILE);
    return status_set(err, ST_IO, "cannot open %s: %s", path, strerror(errno));
  }
  int rc = ST_OK;
  char *buf = NULL;
  long size;
  if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) goto io;
  if (!(buf = malloc((size_t)size + 1))) {
    rc = status_set(err, ST_NOMEM, "out of memory reading %s", path);
    goto done;
  }
  if (fread(buf, 1, (size_t)size, f) != (size_t)size) goto io;
  buf[size] = '\0';
  *text = buf;
  buf = NULL;
  goto done;
io:
  rc = status_set(err, ST_IO, "cannot read %s: %s", path, strerror(errno));
done:
  free(buf);
  fclose(f);
  return rc;
}

/* The top-level fields: format, layout, seed. */
static void read_header(reader_ctx *c, const cJSON *root, manifest *m) {
  char format[32] = "";
  str(c, root, "format", format, sizeof format);
  int version = (int)whole(c, root, "format_version", INT32_MAX);
  if (!c->rc && strcmp(format, MANIFEST_FORMAT) != 0)
    c->rc = status_set(c->err, ST_CORRUPT, "%s: format is \"%s\", expected \"%s\"", c->path,
                       format, MANIFEST_FORMAT);
  if (!c->rc && version == 1)
    c->rc = status_set(c->err, ST_INVALID,
                       "%s: corpus format version 1, which lists no table files, so it can be "
                       "read only through LevelDB's lock; this ddpt reads version %d: reshard it "
                       "with this ddpt (ddpt shard ... --overwrite)", c->path, MANIFEST_VERSION);
  else if (!c->rc && version != MANIFEST_VERSION)
    c->rc = status_set(c->err, ST_CORRUPT,
                       "%s: corpus format version %d, this ddpt reads version %d: reshard it",
                       c->path, version, MANIFEST_VERSION);
  str(c, root, "tool", m->tool, sizeof m->tool);
  str(c, root, "created", m->created, sizeof m->created);
  m->seq_len = (size_t)whole(c, root, "seq_len", 65535);
  m->id_bytes = (int)whole(c, root, "id_bytes", INT32_MAX);
  m->nsp = (int)whole(c, root, "nsp", INT32_MAX);
  str(c, root, "input_format", m->input_format, sizeof m->input_format);
  char seed[24] = "0";
  str(c, root, "seed", seed, sizeof seed);
  m->seed = strtoull(seed, NULL, 10);
  m->valid_fraction = num(c, root, "valid_fraction");
}

/* The "vocab" and "totals" objects. */
static void read_vocab_and_totals(reader_ctx *c, const cJSON *root, manifest *m) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "vocab");
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "totals");
  if (!c->rc && (!cJSON_IsObject(v) || !cJSON_IsObject(t)))
    c->rc = status_set(c->err, ST_CORRUPT, "%s: \"vocab\" or \"totals\" is missing", c->path);
  if (c->rc) return;
  m->vocab_size = (int64_t)whole(c, v, "size", MANIFEST_WHOLE_MAX);
  str(c, v, "sha256", m->vocab_sha256, sizeof m->vocab_sha256);
  m->lowercase = (int)whole(c, v, "lowercase", INT32_MAX);
  m->cls_id = (int32_t)whole(c, v, "cls_id", INT32_MAX);
  m->sep_id = (int32_t)whole(c, v, "sep_id", INT32_MAX);
  m->mask_id = (int32_t)whole(c, v, "mask_id", INT32_MAX);
  m->pad_id = (int32_t)whole(c, v, "pad_id", INT32_MAX);
  m->unk_id = (int32_t)whole(c, v, "unk_id", INT32_MAX);
  m->documents = (uint64_t)whole(c, t, "documents", MANIFEST_WHOLE_MAX);
  m->sequences = (uint64_t)whole(c, t, "sequences", MANIFEST_WHOLE_MAX);
  m->tokens = (uint64_t)whole(c, t, "tokens", MANIFEST_WHOLE_MAX);
  m->unk_tokens = (uint64_t)whole(c, t, "unk_tokens", MANIFEST_WHOLE_MAX);
  m->bytes_in = (uint64_t)whole(c, t, "bytes_in", MANIFEST_WHOLE_MAX);
  m->invalid_utf8_bytes = (uint64_t)whole(c, t, "invalid_utf8_bytes", MANIFEST_WHOLE_MAX);
}

/* n numbers of the list obj[key] into counts. */
static void read_counts(reader_ctx *c, const cJSON *obj, const char *key, uint64_t *counts,
                        size_t n) {
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (c->rc) return;
  if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != n) {
    c->rc = status_set(c->err, ST_CORRUPT, "%s: label_counts \"%s\" is not a list of %zu "
                       "numbers", c->path, key, n);
    return;
  }
  size_t i = 0;
  const cJSON *x;
  cJSON_ArrayForEach(x, arr) {
    double v = cJSON_IsNumber(x) ? x->valuedouble : -1;
    if (!(v >= 0 && v <= MANIFEST_WHOLE_MAX)) {
      c->rc = status_set(c->err, ST_CORRUPT, "%s: label_counts \"%s\" entry %zu is not a count",
                         c->path, key, i);
      return;
    }
    counts[i++] = (uint64_t)v;
  }
}

/* "task" (absent: pretrain) and, for a labelled corpus, its label fields. */
static void read_labels(reader_ctx *c, const cJSON *root, manifest *m) {
  if (c->rc) return;
  const cJSON *task = cJSON_GetObjectItemCaseSensitive(root, "task");
  int t = task ? (cJSON_IsString(task) ? manifest_task_parse(task->valuestring) : -1) : 0;
  if (t < 0) {
    c->rc = status_set(c->err, ST_CORRUPT, "%s: \"task\" is not pretrain, classify or tag: a "
                       "newer ddpt wrote it, or it is damaged", c->path);
    return;
  }
  m->task = (manifest_task)t;
  if (m->task == MANIFEST_TASK_PRETRAIN) return;
  const cJSON *labels = cJSON_GetObjectItemCaseSensitive(root, "labels");
  const cJSON *counts = cJSON_GetObjectItemCaseSensitive(root, "label_counts");
  size_t n = cJSON_IsArray(labels) ? (size_t)cJSON_GetArraySize(labels) : 0;
  if (n == 0 || n > RECORD_MAX_LABELS || !cJSON_IsObject(counts)) {
    c->rc = status_set(c->err, ST_CORRUPT, "%s: a %s corpus needs \"labels\" (1 to %d names) "
                       "and \"label_counts\"", c->path, manifest_task_name(m->task),
                       RECORD_MAX_LABELS);
    return;
  }
  m->labels = calloc(n, sizeof *m->labels);
  m->label_counts = calloc(2 * n, sizeof *m->label_counts);
  if (!m->labels || !m->label_counts) {
    c->rc = status_set(c->err, ST_NOMEM, "%s: out of memory", c->path);
    return;
  }
  const cJSON *x;
  cJSON_ArrayForEach(x, labels) {
    if (!cJSON_IsString(x) || x->valuestring[0] == '\0') {
      c->rc = status_set(c->err, ST_CORRUPT, "%s: label %zu is not a non-empty string", c->path,
                         m->num_labels);
      return;
    }
    if (!(m->labels[m->num_labels] = strdup(x->valuestring))) {
      c->rc = status_set(c->err, ST_NOMEM, "%s: out of memory", c->path);
      return;
    }
    m->num_labels++;
  }
  read_counts(c, counts, "train", m->label_counts, n);
  read_counts(c, counts, "valid", m->label_counts + n, n);
  if (m->task == MANIFEST_TASK_TAG)
    m->label_all_pieces = (int)whole(c, root, "label_all_pieces", INT32_MAX);
  m->truncated = (uint64_t)whole(c, root, "truncated", MANIFEST_WHOLE_MAX);
}

/* Values that each parse but do not fit together. */
static void check_values(reader_ctx *c, const manifest *m) {
  if (c->rc) return;
  int32_t ids[5] = {m->cls_id, m->sep_id, m->mask_id, m->pad_id, m->unk_id};
  int bad_ids = 0;
  for (int i = 0; i < 5; i++) bad_ids |= ids[i] < 0 || ids[i] >= m->vocab_size;
  if (m->seq_len < 8 || m->seq_len > 65535 || (m->id_bytes != 2 && m->id_bytes != 4) ||
      m->vocab_size < 5 || (m->id_bytes == 2 && m->vocab_size > 65536) || bad_ids ||
      m->num_shards == 0 || strlen(m->vocab_sha256) != 64)
    c->rc = status_set(c->err, ST_CORRUPT,
                       "%s: inconsistent values (seq_len %zu, id_bytes %d, vocab size %" PRId64
                       ", %zu shards); the corpus is damaged: reshard it",
                       c->path, m->seq_len, m->id_bytes, m->vocab_size, m->num_shards);
}

/* Each shard's ids fit the vocab; the totals are the shards' sums. What
 * needs the shards' bytes (tokens per shard) is `ddpt corpus verify`'s. */
static void check_sums(reader_ctx *c, const manifest *m) {
  uint64_t seqs = 0, tokens = 0;
  for (size_t k = 0; k < 2 && !c->rc; k++) {
    const manifest_shard *s = k ? m->valid : m->shards;
    size_t n = k ? m->num_valid : m->num_shards;
    for (size_t i = 0; i < n && !c->rc; i++) {
      if ((int64_t)s[i].max_id >= m->vocab_size)
        c->rc = status_set(c->err, ST_CORRUPT, "%s: shard %s holds id %u, but the vocab has "
                           "%" PRId64 " tokens: the manifest or the vocab is damaged or edited; "
                           "reshard",
                           c->path, s[i].name, s[i].max_id, m->vocab_size);
      seqs += s[i].sequences;
      tokens += s[i].tokens;
    }
  }
  if (!c->rc && (seqs != m->sequences || tokens != m->tokens))
    c->rc = status_set(c->err, ST_CORRUPT, "%s: \"totals\" say %llu sequences and %llu tokens, "
                       "the shards' entries add up to %llu and %llu: the manifest is damaged or "
                       "edited; reshard", c->path, (unsigned long long)m->sequences,
                       (unsigned long long)m->tokens, (unsigned long long)seqs,
                       (unsigned long long)tokens);
}

int manifest_parse(const char *text, size_t len, const char *what, manifest **out, char **err) {
  int rc = ST_OK;
  manifest *m = calloc(1, sizeof *m);
  cJSON *root = m ? cJSON_ParseWithLength(text, len) : NULL;
  if (!m)
    rc = status_set(err, ST_NOMEM, "out of memory reading %s", what);
  else if (!root)
    rc = status_set(err, ST_CORRUPT, "%s is not valid JSON; the corpus is damaged: reshard it",
                    what);
  else if (!cJSON_IsObject(root))
    rc = status_set(err, ST_CORRUPT, "%s is not a JSON object; the corpus is damaged: reshard it",
                    what);
  if (!rc) {
    reader_ctx c = {what, err, ST_OK};
    read_header(&c, root, m);
    read_vocab_and_totals(&c, root, m);
    m->shards = read_shards(&c, root, "shards", &m->num_shards);
    m->valid = read_shards(&c, root, "valid_shards", &m->num_valid);
    read_labels(&c, root, m);
    check_values(&c, m);
    check_sums(&c, m);
    rc = c.rc;
  }
  cJSON_Delete(root);
  if (rc) {
    manifest_free(m);
    return rc;
  }
  *out = m;
  return ST_OK;
}

int manifest_read(const char *dir, manifest **out, char **err) {
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return status_set(err, ST_IO, "corpus directory %s does not exist", dir);
  char *path = file_path_join(dir, MANIFEST_FILE), *text = NULL;
  if (!path) return status_set(err, ST_NOMEM, "out of memory reading corpus %s", dir);
  int rc = read_text(path, dir, &text, err);
  if (!rc) rc = manifest_parse(text, strlen(text), path, out, err);
  free(text);
  free(path);
  return rc;
}

void manifest_shards_free_files(manifest_shard *s, size_t n) {
  for (size_t i = 0; s && i < n; i++) {
    free(s[i].files);
    s[i].files = NULL;
    s[i].num_files = 0;
  }
}

void manifest_free(manifest *m) {
  if (!m) return;
  manifest_shards_free_files(m->shards, m->num_shards);
  manifest_shards_free_files(m->valid, m->num_valid);
  for (size_t i = 0; m->labels && i < m->num_labels; i++) free(m->labels[i]);
  free(m->labels);
  free(m->label_counts);
  free(m->shards);
  free(m->valid);
  free(m);
}
