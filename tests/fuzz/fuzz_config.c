/* libFuzzer target for trainer/run_config.c, the config parser: the input
 * is the text of a config file (INI), loaded over the defaults as `ddpt
 * train CONFIG` loads it. Checks that a refusal is one line naming the
 * source, and that whatever is accepted round-trips: run_config_format's
 * text loads again, and formats to the same text (config.ini and the
 * checkpoint's config attribute are read back on resume this way). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/run_config.h"
#include "util/status.h"

static const char source[] = "fuzz.ini";

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  run_config c;
  run_config_defaults(&c);
  char *err = NULL;
  int rc = run_config_load_text(&c, text, source, NULL, 0, &err);
  free(text);
  if (rc) {
    if (!err || strchr(err, '\n') || !strstr(err, source)) abort();
    free(err);
    return 0;
  }
  char *once = run_config_format(&c);
  if (!once) return 0;
  run_config again;
  run_config_defaults(&again);
  if (run_config_load_text(&again, once, "formatted", NULL, 0, &err) != ST_OK) {
    fprintf(stderr, "accepted, but its formatted text is refused: %s\n%s", err, once);
    abort();
  }
  char *twice = run_config_format(&again);
  if (twice && strcmp(once, twice) != 0) {
    fprintf(stderr, "formatted twice, two texts:\n%s---\n%s", once, twice);
    abort();
  }
  free(once);
  free(twice);
  return 0;
}
