/* Labelled corpora for fine-tuning (`ddpt shard --task classify|tag`):
 * parsing examples, label sets, building each example's one sequence, and
 * the writer that shard_writer_run hands a labelled task to.
 *
 * Conventions:
 *  1. Parsers take one line without its '\n' (a final '\r' is dropped) and
 *     fill views into the line, or into their own state (lab_jsonl), valid
 *     until the next call. Their messages name neither file nor line: the
 *     caller prefixes "file:line: ".
 *  2. One example (classify) or one sentence (tag) is one sequence:
 *     [CLS] a [SEP] or [CLS] a [SEP] b [SEP], never packed, never masked.
 *  3. Label ids index the label set; RECORD_IGNORE_LABEL (-100) marks a
 *     position the loss ignores, as HuggingFace's ignore_index does.
 *  See docs/corpus.md, "Labelled corpora (fine-tuning)".
 */
#ifndef DDPT_CORPUS_LABELLED_H
#define DDPT_CORPUS_LABELLED_H

#include <stddef.h>
#include <stdint.h>

#include "corpus/shard_writer.h"
#include "corpus/tokenizer.h"

#define LAB_MAX_LABEL_BYTES 256

/* ------------------------------------------------------------ examples */

typedef struct lab_example {
  int blank;             /* a whitespace-only line: no example */
  const char *label;     /* label_len bytes, surrounding whitespace trimmed */
  size_t label_len;
  const char *text[2];   /* text[1] when pair */
  size_t text_len[2];
  int pair;
} lab_example;

/* "label<TAB>text" or "label<TAB>text_a<TAB>text_b". ST_INVALID for another
 * number of fields, an empty label or an empty (whitespace-only) text. */
/* ASCII whitespace (space, \t, \r, \n, \f, \v), as the parsers trim it;
 * and whether s[0..len) is nothing else. */
int lab_is_space(char c);
int lab_is_blank(const char *s, size_t len);

int lab_parse_tsv(const char *line, size_t len, lab_example *ex, char **err);

/* JSON lines: an object with "text" (string), optional "text_b" (string
 * or null) and "label" (a string, or an integer, which names the label
 * written in decimal: 1 and "1" are one label); other keys are ignored. */
typedef struct lab_jsonl {
  struct cJSON *root; /* the last line parsed: ex's views point into it */
  char number[24];    /* an integer label in decimal */
} lab_jsonl;
int lab_parse_jsonl(lab_jsonl *j, const char *line, size_t len, lab_example *ex, char **err);
void lab_jsonl_free(lab_jsonl *j);

/* SHARD_FORMAT_JSONL for paths ending in .jsonl or .json, else TSV. */
shard_format lab_detect_format(const char *path);

typedef enum { LAB_CONLL_WORD, LAB_CONLL_BREAK, LAB_CONLL_DOCSTART } lab_conll_kind;

typedef struct lab_conll_line {
  lab_conll_kind kind; /* BREAK: a blank line, the end of a sentence */
  const char *word, *tag;
  size_t word_len, tag_len;
} lab_conll_line;

/* CoNLL: "word<whitespace>tag", or more columns with the word first and the
 * tag last (CoNLL-2003's "EU NNP B-NP B-ORG"). A line whose word is
 * -DOCSTART- is a document marker. ST_INVALID for a line of one field. */
int lab_parse_conll(const char *line, size_t len, lab_conll_line *out, char **err);

/* ---------------------------------------------------------- label sets */

typedef struct lab_labels {
  char **names;   /* (n) label id -> NUL-terminated name */
  size_t n, cap;
  size_t *sorted; /* (n) ids in byte order of their names, for lookups */
  int fixed;      /* loaded from a file: the ids are the file's order */
} lab_labels;

/* Reads a label set: one label per line (whitespace trimmed), id = line
 * order. ST_INVALID naming file:line for an empty line, a duplicate, a
 * label longer than LAB_MAX_LABEL_BYTES or invalid UTF-8, more than
 * RECORD_MAX_LABELS labels; ST_IO if unreadable. */
int lab_labels_load(lab_labels *l, const char *path, char **err);

/* Adds a label met in the data (nothing if present). ST_INVALID for a name
 * too long, not UTF-8, or one label too many. */
int lab_labels_add(lab_labels *l, const char *name, size_t len, char **err);

/* Gives the labels added their ids: byte order of names, or numeric order
 * when every name is a decimal integer (-?[1-9][0-9]* or 0), so that
 * integer labels 0..K-1 keep their values as ids. */
void lab_labels_sort(lab_labels *l);

/* The id of the label named by len bytes at name, or -1. */
int32_t lab_labels_find(const lab_labels *l, const char *name, size_t len);

void lab_labels_free(lab_labels *l);

/* ----------------------------------------------------------- sequences */

typedef struct lab_seq_config {
  size_t seq_len;
  int truncate; /* cut what does not fit, else ST_INVALID */
  int label_all_pieces;
  int32_t cls_id, sep_id, unk_id;
} lab_seq_config;

/* classify: writes [CLS] a [SEP] (pair: [CLS] a [SEP] b [SEP]) into ids
 * (room for seq_len), *n ids, *split of them in segment A. Too long: with
 * truncate, pieces come off the end of the longer text one at a time (b
 * on a tie), as HuggingFace's longest_first, and *truncated is set; else
 * ST_INVALID saying how many pieces there are and how many fit. */
int lab_build_example(const lab_seq_config *c, const int32_t *a, size_t na, const int32_t *b,
                      size_t nb, int pair, int32_t *ids, size_t *n, size_t *split, int *truncated,
                      char **err);

/* tag: one sentence's pieces and their tags, built word by word. */
typedef struct lab_sentence {
  tok_ids pieces;
  int32_t *tags; /* (pieces.len) */
  size_t tags_cap, words;
} lab_sentence;

/* Appends word's pieces (tokenized by t; a word that gives none becomes
 * [UNK], so tags stay aligned with words): the first piece tagged tag, the
 * others tag too with label_all_pieces, else RECORD_IGNORE_LABEL. stats
 * may be NULL. Fails only when out of memory. */
int lab_sentence_add_word(lab_sentence *s, const lab_seq_config *c, tokenizer *t, const char *word,
                          size_t len, int32_t tag, tok_stats *stats, char **err);

/* Writes [CLS] pieces [SEP] and their tags ([CLS] and [SEP] ignored) into
 * ids and tags (room for seq_len each) and empties s. More than seq_len - 2
 * pieces: cut at seq_len - 2 with truncate (*truncated set), else
 * ST_INVALID. */
int lab_sentence_finish(lab_sentence *s, const lab_seq_config *c, int32_t *ids, int32_t *tags,
                        size_t *n, int *truncated, char **err);

void lab_sentence_free(lab_sentence *s);

/* -------------------------------------------------------------- writer */

/* shard_writer_run for task classify or tag, its options already checked:
 * reads every input once to check every line and gather the labels (so a
 * bad line fails before anything is written), then again to tokenize and
 * write one record per example. Errors in the input name file:line. */
int labelled_shard_run(const shard_options *opt, shard_progress *summary, char **err);

#endif
