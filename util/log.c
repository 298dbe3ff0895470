/* Rank-aware logging (see log.h). One fprintf per line so that lines from
 * several threads do not interleave mid-line. */
#include "util/log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static log_level g_level = LOG_INFO;
static int g_rank = 0, g_world = 1;
static FILE *g_stream = NULL;

static const char *const k_names[] = {"error", "warn", "info", "debug"};

const char *log_level_name(int level) { return level >= 0 && level < 4 ? k_names[level] : NULL; }

int log_level_parse(const char *name) {
  if (!name) return -1;
  for (int i = 0; i < 4; i++)
    if (strcasecmp(name, k_names[i]) == 0) return i;
  if (strcasecmp(name, "warning") == 0) return LOG_WARN;
  return -1;
}

log_level log_init(int rank, int world) {
  g_rank = rank;
  g_world = world;
  const char *env = getenv("DDPT_LOG");
  if (env && *env) {
    int level = log_level_parse(env);
    if (level >= 0) {
      g_level = (log_level)level;
    } else {
      g_level = LOG_INFO;
      log_warn("DDPT_LOG=%s is not a log level; use error, warn, info or debug (using info)", env);
    }
  }
  return g_level;
}

void log_set_level(log_level level) { g_level = level; }
void log_set_stream(FILE *stream) { g_stream = stream; }

void log_msg(log_level level, const char *fmt, ...) {
  if (level > g_level) return;
  char body[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  FILE *out = g_stream ? g_stream : stderr;
  if (g_world > 1)
    fprintf(out, "[rank %d/%d] %s: %s\n", g_rank, g_world, k_names[level], body);
  else
    fprintf(out, "%s: %s\n", k_names[level], body);
}
