/* Library identification for the corpus module (see corpus.h). */
#include "corpus/corpus.h"

#include <stdio.h>

#include <leveldb/c.h>
#include <utf8proc.h>

void corpus_leveldb_version(char *buf, size_t size) {
  snprintf(buf, size, "LevelDB %d.%d", leveldb_major_version(), leveldb_minor_version());
}

void corpus_utf8proc_version(char *buf, size_t size) {
  snprintf(buf, size, "utf8proc %s", utf8proc_version());
}
