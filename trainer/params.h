/* The parameter dictionary: every parameter of a model in one contiguous
 * float arena, described by a name table (HuggingFace names, PyTorch shapes),
 * with gradient and Adam-moment arenas of the same layout.
 *
 * Conventions:
 *  1. Entries are laid out in the order they are added, back to back with no
 *     padding, so entries added one after the other form one matrix (the
 *     query, key and value weights are one [3H, H] block for a fused GEMM).
 *  2. Adding entries only records them; params_alloc sizes the arenas. Adding
 *     after params_alloc and calling it again grows the arenas and keeps the
 *     values already there; pointers taken before are then stale.
 *  3. Look-ups by a name that is absent return NULL; iteration is over
 *     p->entries[0 .. p->count) in layout order, which never changes.
 */
#ifndef DDPT_TRAINER_PARAMS_H
#define DDPT_TRAINER_PARAMS_H

#include <stddef.h>
#include <stdint.h>

enum {
  PARAMS_TRAINABLE = 1u << 0, /* receives gradient updates */
  PARAMS_DECAY = 1u << 1,     /* takes weight decay (not biases, not LayerNorm) */
};

typedef enum {
  PARAMS_INIT_NORMAL,  /* truncated normal, std 0.02 (cut at 2 std), as BERT */
  PARAMS_INIT_ZEROS,   /* biases */
  PARAMS_INIT_ONES,    /* LayerNorm gains */
  PARAMS_INIT_KAIMING, /* normal, std sqrt(2 / fan_in), for new heads */
} params_init_kind;

enum { PARAMS_NAME_MAX = 96, PARAMS_NDIM_MAX = 4 };

typedef struct params_entry {
  char name[PARAMS_NAME_MAX];
  int ndim;
  size_t shape[PARAMS_NDIM_MAX]; /* PyTorch shape; Linear weights [out, in] */
  size_t offset;                 /* in floats, into every arena */
  size_t count;
  unsigned flags;
  params_init_kind init;
  /* Multiplies the learning rate of this entry (1 from params_add): a
   * fine-tuning run's head learning rate and layer-wise decay. */
  float lr_scale;
} params_entry;

typedef struct params {
  params_entry *entries; /* (count) */
  size_t count, cap;
  size_t total;     /* floats in the table */
  size_t allocated; /* floats in the arenas */
  float *data;      /* (total) values */
  float *grad;      /* (total) gradients */
  float *m, *v;     /* (total) Adam first and second moments */
  /* (total) or NULL: a bf16 copy of data that the optimizer keeps equal to
   * bf16(data) wherever it updates (trainer/optimizer.h). Not owned: the
   * model sets it with its precision (bert_set_precision) and frees it;
   * params_alloc does not size it, so entries are not added after. */
  uint16_t *bf16;
} params;

/* Returns a new empty dictionary; caller frees with params_free. NULL if out
 * of memory. */
params *params_create(void);
void params_free(params *p);

/* Appends an entry. Fails (ST_INVALID) on a duplicate or over-long name.
 * shape has ndim (1..4) sizes, all > 0. */
int params_add(params *p, const char *name, int ndim, const size_t *shape, unsigned flags,
               params_init_kind init, char **err);
/* Sizes the four arenas for every entry added so far; new floats are zero.
 * Fails with ST_NOMEM naming the size. */
int params_alloc(params *p, char **err);

const params_entry *params_find(const params *p, const char *name);
/* Value and gradient of an entry by name (NULL if absent or not allocated). */
float *params_data(const params *p, const char *name);
float *params_grad(const params *p, const char *name);

/* Initialises every entry by its init kind. Entry values depend only on
 * (seed, entry name), so adding an entry leaves the others unchanged. */
void params_init(params *p, uint64_t seed);
/* Initialises one entry (e.g. a classifier head added to a loaded model). */
void params_init_entry(params *p, const params_entry *e, uint64_t seed);

void params_zero_grad(params *p);

/* The first entry holding a NaN or an infinity in p->data (*at: its
 * element), or NULL when every value is finite. A model loaded for use
 * (predict, fill-mask) is refused with it rather than answering nan. */
const params_entry *params_first_nonfinite(const params *p, size_t *at);

/* Bytes of one arena (parameters, or gradients, or one Adam moment). */
size_t params_bytes(const params *p);

/* Checkpoint tensors (storage/ckpt.h) named and shaped as p's entries, over
 * arena (p->data, p->m or p->v), for writing or loading one group: p->count
 * of them (at least one allocated), malloc'd, caller frees; the names point
 * into p. arena NULL: names and shapes only, data NULL (tensors written or
 * read in ranges). NULL if out of memory. */
struct ckpt_tensor *params_ckpt_tensors(const params *p, float *arena);

#endif
