/* storage: HDF5. Named-tensor dictionaries and attributes; the rest of ddpt
 * never includes hdf5.h. */
#ifndef DDPT_STORAGE_STORAGE_H
#define DDPT_STORAGE_STORAGE_H

#include <stddef.h>

/* "HDF5 major.minor.release" of the library ddpt runs with. */
void storage_library_version(char *buf, size_t size);

/* Nonzero when the HDF5 library ddpt runs with matches the headers it was
 * compiled against (H5check_version's condition, without its abort). */
int storage_library_matches_headers(void);

/* HDF5 objects (files, groups, datasets, attributes, types) open in this
 * process. Every storage function closes what it opens, so tests expect 0
 * between calls. */
long storage_open_object_count(void);

#endif
