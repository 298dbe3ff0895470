/* `ddpt shard` as a library call: text files -> tokenized (on all cores,
 * results independent of the thread count) -> packed sequences ->
 * round-robin LevelDB shards -> manifest.json, written last. */
#ifndef DDPT_CORPUS_SHARD_WRITER_H
#define DDPT_CORPUS_SHARD_WRITER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "corpus/manifest.h"

#define SHARD_MAX_SEQ_LEN 512 /* BERT's position embeddings */
#define SHARD_MIN_SEQ_LEN 8
#define SHARD_MAX_SHARDS 99999 /* shard-NNNNN */
#define SHARD_MAX_THREADS 256

typedef enum {
  SHARD_FORMAT_LINES,   /* one document per line */
  SHARD_FORMAT_DOCS,    /* one sentence per line, blank line between documents */
  SHARD_FORMAT_FORTUNE, /* documents separated by lines holding only "%" */
  /* Labelled corpora (corpus/labelled.h): */
  SHARD_FORMAT_TSV,    /* classify: label<TAB>text or label<TAB>text_a<TAB>text_b */
  SHARD_FORMAT_JSONL,  /* classify: one JSON object per line: text, text_b, label */
  SHARD_FORMAT_CONLL,  /* tag: token ... tag per line, a blank line between sentences */
  SHARD_FORMAT_DETECT, /* classify: jsonl for files named *.jsonl or *.json, else tsv */
} shard_format;

/* "lines", "docs", "fortune", "tsv", "jsonl", "conll" -> the format; -1 for
 * anything else. */
int shard_format_parse(const char *name);
const char *shard_format_name(shard_format f);

typedef struct shard_progress {
  uint64_t bytes_read, bytes_total; /* total: of regular files; 0 when stdin is read */
  uint64_t documents, sequences, tokens; /* tokens in sequences, [CLS]/[SEP] included */
  uint64_t valid_documents, valid_sequences;
  uint64_t text_tokens, unk, invalid_utf8_bytes; /* from the tokenizer */
  double seconds;
} shard_progress;

typedef struct shard_options {
  manifest_task task; /* pretrain (packed text), or labelled: classify, tag */
  const char *vocab_path;
  const char *out_dir;
  const char *const *inputs; /* files, directories or "-" for stdin: corpus/inputs.h */
  size_t num_inputs;
  size_t num_shards;
  size_t seq_len;
  shard_format format;
  int nsp;
  double valid_fraction; /* share of documents (labelled: examples) sent to validation */
  /* The validation documents (labelled: examples), instead of valid_fraction. */
  const char *const *valid_inputs;
  size_t num_valid_inputs;
  /* Labelled corpora only (corpus/labelled.h). */
  const char *labels_path;          /* the label set in id order; NULL: sorted from the data */
  int truncate;                     /* cut an example that does not fit instead of failing */
  int label_all_pieces;             /* tag: every piece of a word carries its tag */
  uint64_t seed;
  int lowercase;
  int threads;   /* tokenizer threads, >= 1 */
  int overwrite; /* replace a corpus already in out_dir */
  const char *tool; /* recorded in the manifest */
  size_t chunk_bytes; /* input per tokenizer task; tests shrink it to get many */
  /* Polled between chunks; when it becomes non-zero the run stops with
   * ST_INTERRUPTED and writes no manifest. May be NULL. */
  const volatile sig_atomic_t *stop;
  /* Called about once a second from the calling thread. May be NULL. */
  void (*progress)(void *ctx, const shard_progress *p);
  void *progress_ctx;
} shard_options;

/* pretrain, lines, 1 shard, seq_len 128, no NSP, no validation, seed 0,
 * lowercase, one thread per online CPU, 1 MiB chunks. */
void shard_options_default(shard_options *opt);

/* Runs the whole job (a labelled task: labelled_shard_run). On success the
 * corpus is complete and *summary holds the final counts. Every failure
 * leaves out_dir without a manifest. Missing inputs and a non-empty out_dir
 * (without overwrite) are found before anything is created. */
int shard_writer_run(const shard_options *opt, shard_progress *summary, char **err);

#endif
