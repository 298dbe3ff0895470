/* corpus: text to token ids, LevelDB shards, batches. Only corpus/ includes
 * LevelDB's and utf8proc's headers. */
#ifndef DDPT_CORPUS_CORPUS_H
#define DDPT_CORPUS_CORPUS_H

#include <stddef.h>

/* "LevelDB major.minor" and "utf8proc x.y.z" of the libraries ddpt runs with. */
void corpus_leveldb_version(char *buf, size_t size);
void corpus_utf8proc_version(char *buf, size_t size);

#endif
