/* corpus/shuffle: the per-(shard, epoch) order is a bijection for every n,
 * is a pure function of its key, and differs between epochs and shards. */
#include <stdlib.h>
#include <string.h>

#include "corpus/shuffle.h"
#include "harness.h"

static int is_permutation(const shuffle_perm *p, uint64_t n) {
  uint8_t *seen = calloc(n, 1);
  int ok = 1;
  for (uint64_t k = 0; k < n && ok; k++) {
    uint64_t x = shuffle_perm_at(p, k);
    ok = x < n && !seen[x];
    if (ok) seen[x] = 1;
  }
  free(seen);
  return ok;
}

static void test_shuffle_is_a_bijection_for_every_size(void) {
  for (uint64_t n = 1; n <= 600; n++) {
    shuffle_perm p;
    shuffle_perm_init(&p, n, 42, (uint32_t)n, 3);
    CU_ASSERT_FATAL(is_permutation(&p, n));
  }
  const uint64_t big[] = {65536, 65537, 100003, 1u << 20};
  for (size_t i = 0; i < 4; i++) {
    shuffle_perm p;
    shuffle_perm_init(&p, big[i], 7, 1, 0);
    CU_ASSERT(is_permutation(&p, big[i]));
  }
}

static size_t same_places(const shuffle_perm *a, const shuffle_perm *b, uint64_t n) {
  size_t same = 0;
  for (uint64_t k = 0; k < n; k++) same += shuffle_perm_at(a, k) == shuffle_perm_at(b, k);
  return same;
}

static void test_shuffle_depends_on_seed_shard_and_epoch_only(void) {
  const uint64_t n = 1000;
  shuffle_perm a, a2, e1, s1, seed1;
  shuffle_perm_init(&a, n, 5, 2, 0);
  shuffle_perm_init(&a2, n, 5, 2, 0);
  shuffle_perm_init(&e1, n, 5, 2, 1);
  shuffle_perm_init(&s1, n, 5, 3, 0);
  shuffle_perm_init(&seed1, n, 6, 2, 0);
  CU_ASSERT_EQUAL(same_places(&a, &a2, n), n);
  /* Independent random permutations agree in about one place. */
  CU_ASSERT(same_places(&a, &e1, n) < 10);
  CU_ASSERT(same_places(&a, &s1, n) < 10);
  CU_ASSERT(same_places(&a, &seed1, n) < 10);
  /* Not the identity, and not a rotation of it. */
  size_t fixed = 0, succ = 0;
  for (uint64_t k = 0; k < n; k++) {
    fixed += shuffle_perm_at(&a, k) == k;
    if (k) succ += shuffle_perm_at(&a, k) == shuffle_perm_at(&a, k - 1) + 1;
  }
  CU_ASSERT(fixed < 10 && succ < 10);
}

static const harness_test tests[] = {
    {"test_shuffle_is_a_bijection_for_every_size", test_shuffle_is_a_bijection_for_every_size},
    {"test_shuffle_depends_on_seed_shard_and_epoch_only",
     test_shuffle_depends_on_seed_shard_and_epoch_only},
    {NULL, NULL},
};
const harness_suite corpus_order_suite = {"order", tests};
