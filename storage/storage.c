/* HDF5 library identification (see storage.h). */
#include "storage/storage.h"

#include <stdio.h>

#include <hdf5.h>

void storage_library_version(char *buf, size_t size) {
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  snprintf(buf, size, "HDF5 %u.%u.%u", major, minor, release);
}

int storage_library_matches_headers(void) {
  unsigned major = 0, minor = 0, release = 0;
  if (H5get_libversion(&major, &minor, &release) < 0) return 0;
  return major == H5_VERS_MAJOR && minor == H5_VERS_MINOR && release == H5_VERS_RELEASE;
}

long storage_open_object_count(void) {
  return (long)H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
}
