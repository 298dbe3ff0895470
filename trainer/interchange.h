/* Models in and out: a BERT from a ddpt checkpoint, a HuggingFace directory
 * (or one .safetensors file) or a Google BERT TensorFlow checkpoint, read
 * into ddpt's parameter layout; and written back as a ddpt checkpoint or a
 * HuggingFace model directory. docs/interchange.md has the name mapping.
 *
 * Conventions:
 *  1. Statuses and messages as util/status.h.
 *  2. Names inside ddpt are HuggingFace's (BertForPreTraining). Foreign
 *     names are mapped on reading: Google's bert/encoder/layer_3/.../kernel
 *     (transposed), the legacy LayerNorm.gamma/beta, BertModel's names
 *     without "bert.". Nothing is renamed silently: the report counts or
 *     lists every tensor that was renamed, skipped or left unused.
 *  3. The MLM decoder is tied to the word embeddings, as in HuggingFace. A
 *     source that stores cls.predictions.decoder.weight has it compared with
 *     the embeddings; a difference is reported, and the embeddings win.
 *  4. Tensors the model needs and the source lacks (a BertModel has no MLM
 *     head) are initialised as training would, and listed as fresh.
 *  5. The task follows the source: a ddpt checkpoint's [model] task, or a
 *     HuggingFace config.json whose architectures name
 *     BertForSequenceClassification or BertForTokenClassification (labels
 *     from id2label). Label names travel as the checkpoint attribute
 *     "labels" and as config.json's id2label/label2id.
 */
#ifndef DDPT_TRAINER_INTERCHANGE_H
#define DDPT_TRAINER_INTERCHANGE_H

#include <stddef.h>
#include <stdint.h>

#include "trainer/bert.h"
#include "trainer/params.h"

/* What reading a source did beyond loading tensors one for one. */
typedef struct xchg_report {
  const char *format;  /* "ddpt checkpoint", "safetensors", "TensorFlow checkpoint" */
  size_t loaded;       /* ddpt tensors filled from the source */
  size_t renamed;      /* of those, found under a legacy or prefix-less name */
  size_t optimizer;    /* optimizer slots and step counters skipped */
  char **unused;       /* (n_unused) source tensors with no place in the model */
  size_t n_unused;
  char **fresh;        /* (n_fresh) model tensors the source lacked: initialised */
  size_t n_fresh;
  char **notes;        /* (n_notes) ties checked, buffers dropped, ... one line each */
  size_t n_notes;
} xchg_report;

void xchg_report_clear(xchg_report *r);

/* A model read from a source. */
typedef struct xchg_model {
  bert_config cfg; /* nsp set when the source has the next-sentence head */
  params *p;       /* allocated, every entry filled (loaded or fresh) */
  /* Float tensors of the source this layout has no place for, under ddpt's
   * names (a BertModel's pooler when the model has no NSP head, a foreign
   * head): fine-tuning loads by name from p, then from here, as PyTorch
   * would. NULL when there are none (and for ddpt checkpoints). */
  params *extra;
  int has_optim;   /* p->m and p->v hold the source's Adam moments */
  char *vocab;     /* the vocab.txt text, NULL when the source has none */
  char *labels;    /* CLASSIFY, TAG: the label names as a JSON array (index = id), or NULL */
  int lowercase;   /* the tokenizer lowercases (do_lower_case) */
  xchg_report report;
} xchg_model;

typedef struct xchg_read_opts {
  const char *vocab_path;  /* a vocab.txt to use (and to check against a recorded one) */
  const char *config_path; /* a config.json for a bare .safetensors or TF prefix */
  int cased;               /* 1: the tokenizer keeps case (sources that do not say) */
  int with_optimizer;      /* TF: adam_m/adam_v slots into p->m/p->v, every one required */
  uint64_t seed;           /* for fresh tensors */
} xchg_read_opts;

/* Reads src, which is a ddpt checkpoint (.h5), a HuggingFace directory, a
 * .safetensors file, a model.safetensors.index.json, or a TensorFlow
 * checkpoint prefix (or its .index file, or a directory holding one).
 * On failure *out is zeroed. */
int xchg_read(const char *src, const xchg_read_opts *o, xchg_model *out, char **err);
void xchg_model_clear(xchg_model *m);

/* Writes m as a ddpt checkpoint at path (which must not exist),
 * atomically: step 0, the model config, the vocab, `imported_from` naming
 * src, and /optim when m->has_optim. */
int xchg_write_ckpt(const xchg_model *m, const char *src, const char *path, char **err);

typedef enum {
  XCHG_ARCH_AUTO,           /* follow the heads: pretraining with NSP, else masked LM; the task's class */
  XCHG_ARCH_PRETRAINING,    /* BertForPreTraining */
  XCHG_ARCH_MASKED_LM,      /* BertForMaskedLM */
  XCHG_ARCH_SEQ_CLASS,      /* BertForSequenceClassification */
  XCHG_ARCH_TOKEN_CLASS,    /* BertForTokenClassification */
} xchg_arch;

/* "BertForMaskedLM" -> XCHG_ARCH_MASKED_LM; -1 for an unknown name. */
int xchg_arch_parse(const char *name);
const char *xchg_arch_name(xchg_arch a);

typedef struct xchg_export_opts {
  xchg_arch arch;
  int dtype;     /* a safet_dtype: SAFET_F32, SAFET_BF16 or SAFET_F16 */
  int overwrite; /* replace an existing non-empty out_dir */
} xchg_export_opts;

/* Writes m as a HuggingFace model directory: model.safetensors (the arch's
 * tensors, tied decoder not stored), config.json, vocab.txt,
 * tokenizer_config.json and special_tokens_map.json. A tagger's CRF, which
 * BertForTokenClassification lacks, goes to crf.safetensors beside them.
 * Built in a hidden sibling directory and renamed into place, so out_dir
 * is complete or untouched. *arch_out (may be NULL) receives the arch
 * written. */
int xchg_write_hf(const xchg_model *m, const char *out_dir, const xchg_export_opts *o,
                  xchg_arch *arch_out, char **err);
/* The check xchg_write_hf starts with (out_dir missing, an empty directory,
 * or overwrite), for callers that want to fail before reading a model. */
int xchg_check_out_dir(const char *out_dir, int overwrite, char **err);

#endif
