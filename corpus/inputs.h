/* The text files a command reads. `ddpt vocab` and `ddpt shard` list their
 * inputs with this one function, so a vocab is trained on exactly the files
 * the corpus is sharded from.
 *
 * Rules:
 *  1. A path the user names is read whatever its name (".hidden.txt" or
 *     "./texts" too): a regular file, or a directory, walked as below.
 *  2. Directories are walked depth first, the entries of each in byte order
 *     of their names, so the same tree always gives the same list.
 *  3. Inside a directory, every entry whose name starts with '.' is skipped,
 *     files and directories alike (.git, .DS_Store, editors' swap files),
 *     and so is anything that is neither a regular file nor a directory.
 *  4. Symbolic links are followed.
 *  5. Where the caller reads each input once (streams), "-" names standard
 *     input and a named pipe or device given by name is read as a file.
 *  6. The output must not be among the inputs: a corpus inside its own input
 *     directory, or a vocab among its own training text, would be read back.
 */
#ifndef DDPT_CORPUS_INPUTS_H
#define DDPT_CORPUS_INPUTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct corpus_inputs {
  char **paths;         /* (n) malloc'd, in reading order; "-" is standard input */
  size_t n;
  uint64_t total_bytes; /* sizes of the regular files */
} corpus_inputs;

/* Lists the input files of paths[0..num_paths) into *out (free it with
 * corpus_inputs_free, also after a failure). streams: nonzero when each
 * input is read once (rule 5). output (may be NULL): the file or directory
 * the command writes; if it exists and is met among the inputs, ST_INVALID.
 * A missing path is ST_IO; no file at all is ST_INVALID. */
int corpus_inputs_list(corpus_inputs *out, const char *const *paths, size_t num_paths, int streams,
                       const char *output, char **err);
void corpus_inputs_free(corpus_inputs *in);

#endif
