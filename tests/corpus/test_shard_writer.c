/* corpus/shard_writer: output independent of thread count and chunking,
 * round-robin shards that verify, and every bad input refused with one
 * clear message and no complete-looking corpus. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>

#include "corpus/corpus.h"
#include "corpus/manifest.h"
#include "corpus/shard_reader.h"
#include "harness.h"
#include "test_shard_fixture.h"
#include "util/file.h"
#include "util/status.h"

static manifest *read_manifest(const char *dir) {
  manifest *m = NULL;
  char *err = NULL;
  int rc = manifest_read(dir, &m, &err);
  if (rc) fprintf(stderr, "%s\n", err);
  free(err);
  CU_ASSERT_EQUAL_FATAL(rc, ST_OK);
  return m;
}

/* Shard sa of corpus a and shard sb of corpus b hold the same records. */
static int same_shard(const char *a, const manifest *ma, const manifest_shard *sa, const char *b,
                      const manifest *mb, const manifest_shard *sb) {
  int32_t ia[512], ib[512];
  shard_reader *ra = NULL, *rb = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(shard_reader_open(a, ma, sa, &ra, &err), ST_OK);
  CU_ASSERT_EQUAL_FATAL(shard_reader_open(b, mb, sb, &rb, &err), ST_OK);
  int same = sa->sequences == sb->sequences && sa->tokens == sb->tokens;
  for (uint64_t k = 0; same && k < sa->sequences; k++) {
    record x, y;
    CU_ASSERT_EQUAL_FATAL(shard_reader_get(ra, k, ia, &x, &err), ST_OK);
    CU_ASSERT_EQUAL_FATAL(shard_reader_get(rb, k, ib, &y, &err), ST_OK);
    same = x.n == y.n && x.split == y.split && x.pair == y.pair &&
           x.random_next == y.random_next && memcmp(ia, ib, x.n * sizeof *ia) == 0;
  }
  shard_reader_close(ra);
  shard_reader_close(rb);
  return same;
}

/* Shard lists sa (of corpus a) and sb (of b) have the same names and records. */
static int same_shards(const char *a, const manifest *ma, const manifest_shard *sa, size_t na,
                       const char *b, const manifest *mb, const manifest_shard *sb, size_t nb) {
  int same = na == nb;
  for (size_t s = 0; same && s < na; s++)
    same = strcmp(sa[s].name, sb[s].name) == 0 && same_shard(a, ma, &sa[s], b, mb, &sb[s]);
  return same;
}

/* Every record of every training and validation shard of a and b is the
 * same, and a has validation shards to compare. */
static int same_records(const char *a, const char *b) {
  manifest *ma = read_manifest(a), *mb = read_manifest(b);
  CU_ASSERT(ma->num_valid > 0 && ma->valid[0].sequences > 0);
  int same = ma->sequences == mb->sequences && ma->tokens == mb->tokens &&
             ma->documents == mb->documents &&
             same_shards(a, ma, ma->shards, ma->num_shards, b, mb, mb->shards, mb->num_shards) &&
             same_shards(a, ma, ma->valid, ma->num_valid, b, mb, mb->valid, mb->num_valid);
  manifest_free(ma);
  manifest_free(mb);
  return same;
}

static void test_shard_output_is_identical_with_1_and_2_threads(void) {
  fixture f;
  fixture_init(&f, "shard-threads", 3000, 1);
  char one[1024], two[1024];
  snprintf(one, sizeof one, "%s/one", f.root);
  snprintf(two, sizeof two, "%s/two", f.root);
  for (int nsp = 0; nsp <= 1; nsp++) {
    shard_options opt = fixture_options(&f, 3, 64);
    opt.nsp = nsp;
    opt.valid_fraction = 0.1;
    opt.overwrite = 1;
    opt.out_dir = one;
    opt.threads = 1;
    fixture_shard(&opt);
    opt.out_dir = two;
    opt.threads = 2;
    opt.chunk_bytes = 4096; /* many chunks in flight at once */
    fixture_shard(&opt);
    CU_ASSERT(same_records(one, two));
  }
  fixture_free(&f);
}

static void test_shard_round_robin_shards_verify(void) {
  fixture f;
  fixture_init(&f, "shard-rr", 500, 2);
  shard_options opt = fixture_options(&f, 4, 32);
  fixture_shard(&opt);
  manifest *m = read_manifest(f.out);
  uint64_t seqs = 0, tokens = 0;
  for (size_t s = 0; s < m->num_shards; s++) {
    /* Sequence j went to shard j % 4: sizes differ by at most one, first
     * shards first. */
    CU_ASSERT(m->shards[0].sequences - m->shards[s].sequences <= 1);
    shard_reader *r = NULL;
    char *err = NULL;
    uint64_t t = 0;
    CU_ASSERT_EQUAL_FATAL(shard_reader_open(f.out, m, &m->shards[s], &r, &err), ST_OK);
    CU_ASSERT_EQUAL(shard_reader_verify(r, m, &t, &err), ST_OK);
    CU_ASSERT_EQUAL(t, m->shards[s].tokens);
    shard_reader_close(r);
    seqs += m->shards[s].sequences;
    tokens += t;
  }
  CU_ASSERT_EQUAL(seqs, m->sequences);
  CU_ASSERT_EQUAL(tokens, m->tokens);
  CU_ASSERT_EQUAL(m->num_valid, 0);
  CU_ASSERT(m->documents > 400 && m->documents <= 500);
  manifest_free(m);
  fixture_free(&f);
}

/* Runs opt, expects code and a message containing needle. */
static void expect_failure(const shard_options *opt, int code, const char *needle) {
  shard_progress s;
  char *err = NULL;
  int rc = shard_writer_run(opt, &s, &err);
  CU_ASSERT_EQUAL(rc, code);
  CU_ASSERT_PTR_NOT_NULL_FATAL(err);
  if (!strstr(err, needle)) fprintf(stderr, "message '%s' lacks '%s'\n", err, needle);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
  CU_ASSERT_PTR_NULL(strchr(err, '\n'));
  free(err);
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static void test_shard_refuses_bad_input_with_one_clear_line(void) {
  fixture f;
  fixture_init(&f, "shard-bad", 50, 3);
  shard_options opt = fixture_options(&f, 2, 32);
  char missing[1024], empty[1024], manifest_path[1024];
  snprintf(missing, sizeof missing, "%s/no-such-file.txt", f.root);
  snprintf(empty, sizeof empty, "%s/blank.txt", f.root);
  snprintf(manifest_path, sizeof manifest_path, "%s/%s", f.out, MANIFEST_FILE);
  const char *missing_in[] = {missing};
  shard_options o = opt;
  o.inputs = missing_in;
  expect_failure(&o, ST_IO, "no-such-file.txt");
  CU_ASSERT(!exists(f.out)); /* nothing created */

  o = opt;
  o.seq_len = 7;
  expect_failure(&o, ST_INVALID, "--seq-len 7");
  o.seq_len = 513;
  expect_failure(&o, ST_INVALID, "--seq-len 513");
  CU_ASSERT(!exists(f.out));

  FILE *e = fopen(empty, "w");
  fputs("\n   \n\n", e);
  fclose(e);
  const char *empty_in[] = {empty};
  o = opt;
  o.inputs = empty_in;
  expect_failure(&o, ST_INVALID, "no documents");
  CU_ASSERT(!exists(manifest_path));

  FILE *tiny = fopen(empty, "w"); /* one short document: one sequence */
  fputs("abc def\n", tiny);
  fclose(tiny);
  o = opt;
  o.inputs = empty_in;
  expect_failure(&o, ST_INVALID, "2 shards but only 1 training sequences");
  CU_ASSERT(!exists(f.out)); /* a failed run takes back what it created */

  fixture_shard(&opt); /* leaves a corpus in out ... */
  expect_failure(&opt, ST_INVALID, "--overwrite"); /* ... which is not replaced silently */
  CU_ASSERT(exists(manifest_path));
  o = opt;
  o.overwrite = 1;
  fixture_shard(&o);

  static volatile sig_atomic_t stop = 1; /* as if Ctrl-C came at once */
  o.stop = &stop;
  expect_failure(&o, ST_INTERRUPTED, "incomplete");
  CU_ASSERT(!exists(manifest_path));
  corpus_options copt;
  corpus_options_default(&copt);
  corpus *c = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL(corpus_open(f.out, 0, 1, &copt, &c, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "incomplete corpus"));
  free(err);
  fixture_free(&f);
}

/* --valid FILE: its documents, and only they, make the validation shard,
 * packed as FILE alone would be (many chunks in flight at once, so the
 * training chunks still being tokenized must not leak into it); the
 * training shards are the INPUTs' alone. */
static void test_shard_valid_file_is_the_whole_validation_split(void) {
  fixture f, g;
  fixture_init(&f, "shard-validfile", 400, 4);
  fixture_init(&g, "shard-validfile-held", 60, 5);
  char both[1024], train_only[1024], valid_only[1024];
  snprintf(both, sizeof both, "%s/both", f.root);
  snprintf(train_only, sizeof train_only, "%s/train", f.root);
  snprintf(valid_only, sizeof valid_only, "%s/valid", f.root);
  const char *held[] = {g.text};
  shard_options opt = fixture_options(&f, 3, 64);
  opt.valid_inputs = held;
  opt.num_valid_inputs = 1;
  opt.out_dir = both;
  opt.threads = 2;
  opt.chunk_bytes = 4096;
  shard_progress s = fixture_shard(&opt);
  CU_ASSERT(s.valid_documents > 50 && s.valid_documents <= 60);
  CU_ASSERT(s.documents > 350 && s.documents <= 400);

  shard_options t = fixture_options(&f, 3, 64); /* the training text alone */
  t.out_dir = train_only;
  shard_progress st = fixture_shard(&t);
  shard_options v = fixture_options(&f, 1, 64); /* FILE alone, as training */
  v.inputs = held;
  v.out_dir = valid_only;
  shard_progress sv = fixture_shard(&v);
  CU_ASSERT_EQUAL(s.documents, st.documents);
  CU_ASSERT_EQUAL(s.valid_documents, sv.documents);

  manifest *mb = read_manifest(both), *mt = read_manifest(train_only), *mv = read_manifest(valid_only);
  CU_ASSERT_EQUAL_FATAL(mb->num_valid, 1);
  CU_ASSERT(same_shards(both, mb, mb->shards, mb->num_shards, train_only, mt, mt->shards,
                        mt->num_shards));
  CU_ASSERT(same_shard(both, mb, &mb->valid[0], valid_only, mv, &mv->shards[0]));
  manifest_free(mb);
  manifest_free(mt);
  manifest_free(mv);

  opt.valid_fraction = 0.1; /* two answers to one question */
  opt.overwrite = 1;
  expect_failure(&opt, ST_INVALID, "--valid FILE and --valid-fraction");
  opt.valid_fraction = 0;
  char blank[1024];
  snprintf(blank, sizeof blank, "%s/blank.txt", f.root);
  FILE *e = fopen(blank, "w");
  fputs("\n  \n", e);
  fclose(e);
  const char *blank_in[] = {blank};
  opt.valid_inputs = blank_in;
  expect_failure(&opt, ST_INVALID, "no documents in the validation input");
  fixture_free(&g);
  fixture_free(&f);
}

static void test_corpus_open_names_both_hashes_on_vocab_mismatch(void) {
  fixture f;
  fixture_init(&f, "shard-vocab", 60, 4);
  shard_options opt = fixture_options(&f, 1, 32);
  fixture_shard(&opt);
  manifest *m = read_manifest(f.out);
  char other[1024];
  snprintf(other, sizeof other, "%s/other-vocab.txt", f.root);
  FILE *v = fopen(other, "w");
  fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nzzz\n", v);
  fclose(v);
  corpus_options copt;
  corpus_options_default(&copt);
  copt.vocab_path = other;
  corpus *c = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL(corpus_open(f.out, 0, 1, &copt, &c, &err), ST_MISMATCH);
  CU_ASSERT_PTR_NOT_NULL_FATAL(err);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, m->vocab_sha256));
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "other-vocab.txt (SHA-256 "));
  free(err);
  err = NULL;
  copt.vocab_path = f.vocab; /* the right one opens */
  CU_ASSERT_EQUAL(corpus_open(f.out, 0, 1, &copt, &c, &err), ST_OK);
  corpus_close(c);
  manifest_free(m);
  fixture_free(&f);
}

/* Flips one byte in the middle of the shard's table file. */
static void damage_table(const char *shard_dir) {
  DIR *d = opendir(shard_dir);
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  struct dirent *e;
  char path[1024] = "";
  while ((e = readdir(d)))
    if (strstr(e->d_name, ".ldb"))
      CU_ASSERT_FATAL(snprintf(path, sizeof path, "%s/%s", shard_dir, e->d_name) < (int)sizeof path);
  closedir(d);
  CU_ASSERT_FATAL(path[0] != '\0');
  FILE *t = fopen(path, "r+b");
  fseek(t, 0, SEEK_END);
  long size = ftell(t);
  fseek(t, size / 3, SEEK_SET);
  int c = fgetc(t);
  fseek(t, size / 3, SEEK_SET);
  fputc(c ^ 0x55, t);
  fclose(t);
}

static void test_shard_verify_names_a_damaged_shard(void) {
  fixture f;
  fixture_init(&f, "shard-damage", 300, 5);
  shard_options opt = fixture_options(&f, 2, 32);
  fixture_shard(&opt);
  manifest *m = read_manifest(f.out);
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", f.out, m->shards[1].name);
  damage_table(path);
  shard_reader *r = NULL;
  char *err = NULL;
  uint64_t t = 0;
  int rc = shard_reader_open(f.out, m, &m->shards[1], &r, &err);
  if (!rc) rc = shard_reader_verify(r, m, &t, &err);
  CU_ASSERT_EQUAL(rc, ST_CORRUPT);
  CU_ASSERT(err && strstr(err, "shard-00001") &&
                         strstr(err, "block checksum mismatch"));
  free(err);
  shard_reader_close(r);
  manifest_free(m);
  fixture_free(&f);
}

/* A corpus directory whose manifest path is past PATH_MAX: reading fails
 * naming the whole path, rather than opening a name cut to fit a buffer
 * (which reported "incomplete corpus" for a file it never looked at). */
static void test_manifest_path_past_path_max_is_named_whole(void) {
  char *root = harness_tmpdir("longpath");
  size_t cap = 4200, len = strlen(root);
  char *dir = malloc(cap);
  CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
  memcpy(dir, root, len + 1);
  while (len < 4085) { /* each level a legal name, the whole under 4096 */
    size_t step = 4085 - len > 201 ? 200 : 4085 - len - 1;
    dir[len] = '/';
    memset(dir + len + 1, 'd', step);
    len += 1 + step;
    dir[len] = '\0';
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0755), 0);
  }
  manifest *m = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL(manifest_read(dir, &m, &err), ST_IO);
  CU_ASSERT(err && strstr(err, "manifest.json: File name too long"));
  CU_ASSERT(!(err && strstr(err, "incomplete")));
  free(err);
  free(dir);
  harness_rmtree(root);
  free(root);
}

/* Replaces the first `from` in dir's manifest.json with `to`. */
static void edit_manifest(const char *dir, const char *from, const char *to) {
  char *path = file_path_join(dir, MANIFEST_FILE);
  FILE *f = fopen(path, "rb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  char text[8192];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  char *at = strstr(text, from);
  CU_ASSERT_PTR_NOT_NULL_FATAL(at);
  f = fopen(path, "wb");
  fwrite(text, 1, (size_t)(at - text), f);
  fputs(to, f);
  fputs(at + strlen(from), f);
  fclose(f);
  free(path);
}

/* Each kind of damage to manifest.json is ST_CORRUPT with a message that
 * names the file and what is wrong; the undamaged one reads back. */
static void test_damaged_manifest_is_refused_naming_what_is_wrong(void) {
  fixture f;
  fixture_init(&f, "manifest-damage", 60, 6);
  shard_options opt = fixture_options(&f, 1, 32);
  const struct {
    const char *from, *to, *needle;
  } cases[] = {
      {"{", "[", "is not valid JSON"},
      {"\"format_version\":\t2", "\"format_version\":\t3", "corpus format version 3"},
      {"\"seq_len\":\t32", "\"seq_len\":\t7", "inconsistent values (seq_len 7"},
      {"\"totals\"", "\"sums\"", "\"vocab\" or \"totals\" is missing"},
      {"\"tool\":\t\"", "\"tool\":\t1, \"x\":\t\"",
       "field \"tool\" is missing or not a string"},
      {"\"name\":\t\"shard-00000\"", "\"name\":\t\"../x\"", "shards entry 0 (\"../x\") is invalid"},
      /* Found by tests/fuzz/fuzz_manifest.c: a raw newline in a string
       * reached a message quoting it, which was then two lines. */
      {"\"format\":\t\"ddpt", "\"format\":\t\"d\ndpt", "field \"format\" holds a control character"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    fixture_shard(&opt);
    manifest_free(read_manifest(f.out));
    opt.overwrite = 1;
    edit_manifest(f.out, cases[i].from, cases[i].to);
    manifest *m = NULL;
    char *err = NULL;
    CU_ASSERT_EQUAL(manifest_read(f.out, &m, &err), ST_CORRUPT);
    CU_ASSERT_PTR_NULL(m);
    int named = err && strstr(err, cases[i].needle) && strstr(err, MANIFEST_FILE);
    if (!named) fprintf(stderr, "case %zu: '%s' lacks '%s'\n", i, err, cases[i].needle);
    CU_ASSERT(named);
    free(err);
  }
  /* A version 1 corpus (no file lists) is refused with what to do. */
  fixture_shard(&opt);
  edit_manifest(f.out, "\"format_version\":\t2", "\"format_version\":\t1");
  manifest *m = NULL;
  char *err = NULL;
  CU_ASSERT_EQUAL(manifest_read(f.out, &m, &err), ST_INVALID);
  CU_ASSERT(err && strstr(err, "corpus format version 1") && strstr(err, "reshard"));
  free(err);
  fixture_free(&f);
}

static const harness_test tests[] = {
    {"test_shard_output_is_identical_with_1_and_2_threads",
     test_shard_output_is_identical_with_1_and_2_threads},
    {"test_shard_round_robin_shards_verify", test_shard_round_robin_shards_verify},
    {"test_shard_refuses_bad_input_with_one_clear_line",
     test_shard_refuses_bad_input_with_one_clear_line},
    {"test_shard_valid_file_is_the_whole_validation_split",
     test_shard_valid_file_is_the_whole_validation_split},
    {"test_corpus_open_names_both_hashes_on_vocab_mismatch",
     test_corpus_open_names_both_hashes_on_vocab_mismatch},
    {"test_shard_verify_names_a_damaged_shard", test_shard_verify_names_a_damaged_shard},
    {"test_manifest_path_past_path_max_is_named_whole",
     test_manifest_path_past_path_max_is_named_whole},
    {"test_damaged_manifest_is_refused_naming_what_is_wrong",
     test_damaged_manifest_is_refused_naming_what_is_wrong},
    {NULL, NULL},
};
const harness_suite corpus_shard_writer_suite = {"shard_writer", tests};
