/* The switch between tests/multihost's pretend hosts when their links need
 * a delay: a userspace hub that holds every frame for a fixed one-way delay
 * and can limit each port's sending rate, because this kernel has no netem
 * (CONFIG_NET_SCH_NETEM, fq and etf unset) and tbf alone gives no delay.
 *
 * Each port is a TAP device that the hub creates inside a network namespace
 * (NETNS/IFNAME: /run/netns/NETNS, as `ip netns add` makes). A frame read
 * from port i at time t is due at
 *     due = max(t, end of port i's previous frame) + len / rate + delay
 * (the rate term only with --rate), is never written out before due, and
 * goes to the port that last sent from its destination MAC (one host per
 * port), or to every other port when that is unknown or a broadcast. While
 * a port's wire is booked more than BACKLOG_NS ahead, the hub stops reading
 * it: the sender's own queues (TCP small queues, the TAP's ring) hold the
 * excess, as they would for a NIC, instead of an ever deeper hub queue.
 *
 * Once every TAP exists the hub forks: the parent exits 0 (the ports are
 * ready to be configured), the child forwards until SIGTERM or SIGINT and
 * then writes one line of statistics to --log, which also gets any error.
 * The TAPs live as long as the child: killing it removes them.
 *
 * usage: netns_hub [--rate RATE] [--delay DELAY] [--log FILE] NETNS/IFNAME...
 *   RATE: none (default) or a number with bit, kbit, mbit or gbit (tc's)
 *   DELAY: a number with ns, us, ms or s (default 0us) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "util/timer.h"

enum {
  MAX_PORTS = 64,
  MAX_FRAME = 65535 + 14,     /* the largest TAP MTU (65521) plus the Ethernet header */
  READ_BURST = 64,            /* frames read from one port before looking at the others */
  LATE_BUCKETS = 24,          /* lateness histogram: bucket k holds < 2^k us */
};
#define BACKLOG_NS 2000000ull /* how far ahead a port's wire may be booked before reading it stops */
#define QUEUE_LIMIT (256u << 20) /* bytes held in all; a frame beyond is dropped */

typedef struct frame {
  struct frame *next;
  uint64_t due_ns;
  size_t len;
  unsigned char data[];
} frame;

typedef struct port {
  const char *name; /* NETNS/IFNAME, for messages */
  int fd;
  unsigned char mac[6]; /* the source MAC last seen from this port */
  int mac_known;
  frame *head, *tail;   /* frames read from this port, in due order */
  uint64_t wire_free_ns; /* when this port's wire ends its last booked frame */
} port;

typedef struct hub_stats {
  uint64_t frames, bytes, dropped;
  uint64_t late_sum_ns, late_max_ns, late_hist[LATE_BUCKETS];
} hub_stats;

typedef struct hub {
  port ports[MAX_PORTS];
  int n;
  double ns_per_byte; /* 0: no rate limit */
  uint64_t delay_ns;
  size_t queued_bytes;
  hub_stats stats;
} hub;

static volatile sig_atomic_t stop_signal;
static void on_stop(int sig) { stop_signal = sig; }

/* "10gbit" -> nanoseconds per byte; "none" -> 0. Returns 0, or -1. */
static int parse_rate(const char *s, double *ns_per_byte) {
  static const struct { const char *unit; double bits; } units[] = {
      {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}};
  if (!strcmp(s, "none")) return *ns_per_byte = 0, 0;
  char *end;
  double v = strtod(s, &end);
  for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
    if (end != s && v > 0 && !strcmp(end, units[i].unit)) return *ns_per_byte = 8e9 / (v * units[i].bits), 0;
  }
  return -1;
}

/* "50us" -> 50000. Returns 0, or -1. */
static int parse_delay(const char *s, uint64_t *ns) {
  static const struct { const char *unit; double ns; } units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}};
  char *end;
  double v = strtod(s, &end);
  if (end != s && v == 0 && !*end) return *ns = 0, 0;
  for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
    if (end != s && v >= 0 && !strcmp(end, units[i].unit) && v * units[i].ns < 1e10)
      return *ns = (uint64_t)(v * units[i].ns), 0;
  }
  return -1;
}

/* Creates TAP IFNAME inside namespace NETNS for spec "NETNS/IFNAME" and
 * returns its fd, the hub back in its own namespace; -1 with a message. */
static int tap_open(const char *spec, int home_ns) {
  const char *slash = strrchr(spec, '/');
  if (!slash || slash == spec || strlen(slash + 1) == 0 || strlen(slash + 1) >= IFNAMSIZ) {
    fprintf(stderr, "netns_hub: port '%s' is not NETNS/IFNAME (an interface name of 1-%d characters)\n", spec,
            IFNAMSIZ - 1);
    return -1;
  }
  char path[300];
  snprintf(path, sizeof path, "/run/netns/%.*s", (int)(slash - spec), spec);
  const char *step = "open the namespace";
  int fd = -1, ns = open(path, O_RDONLY | O_CLOEXEC);
  if (ns < 0) goto fail;
  step = "enter the namespace";
  if (setns(ns, CLONE_NEWNET)) goto fail;
  step = "open /dev/net/tun";
  fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) goto fail;
  struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", slash + 1);
  step = "create the TAP device";
  if (ioctl(fd, TUNSETIFF, &ifr)) goto fail;
  step = "return to the hub's namespace";
  if (setns(home_ns, CLONE_NEWNET)) goto fail;
  close(ns);
  return fd;
fail:
  fprintf(stderr, "netns_hub: port '%s': cannot %s (%s): %s; needs root and a namespace made by `ip netns add`\n",
          spec, step, path, strerror(errno));
  if (fd >= 0) close(fd);
  if (ns >= 0) close(ns);
  return -1;
}

static void note_lateness(hub_stats *s, uint64_t late_ns) {
  int k = 0;
  while (k < LATE_BUCKETS - 1 && late_ns >= (1000ull << k)) k++;
  s->late_hist[k]++;
  s->late_sum_ns += late_ns;
  if (late_ns > s->late_max_ns) s->late_max_ns = late_ns;
}

static void write_frame(hub *h, port *dst, const frame *f) {
  if (write(dst->fd, f->data, f->len) != (ssize_t)f->len) h->stats.dropped++; /* e.g. the interface is down */
}

/* Writes f to the port that owns its destination MAC, or floods it. */
static void forward(hub *h, int src, const frame *f) {
  const unsigned char *dst_mac = f->data;
  if (!(dst_mac[0] & 1)) {
    for (int i = 0; i < h->n; i++) {
      if (i != src && h->ports[i].mac_known && !memcmp(h->ports[i].mac, dst_mac, 6)) {
        write_frame(h, &h->ports[i], f);
        return;
      }
    }
  }
  for (int i = 0; i < h->n; i++) {
    if (i != src) write_frame(h, &h->ports[i], f);
  }
}

/* The port whose oldest frame is due first; -1 when nothing is held. */
static int earliest(const hub *h) {
  int best = -1;
  for (int i = 0; i < h->n; i++) {
    const frame *f = h->ports[i].head;
    if (f && (best < 0 || f->due_ns < h->ports[best].head->due_ns)) best = i;
  }
  return best;
}

static void deliver_due(hub *h) {
  for (int i; (i = earliest(h)) >= 0;) {
    uint64_t now = timer_now_ns();
    port *p = &h->ports[i];
    frame *f = p->head;
    if (f->due_ns > now) return;
    p->head = f->next;
    if (!p->head) p->tail = NULL;
    forward(h, i, f);
    note_lateness(&h->stats, now - f->due_ns);
    h->queued_bytes -= f->len;
    free(f);
  }
}

static int wire_open(const hub *h, const port *p, uint64_t now) {
  return h->ns_per_byte == 0 || p->wire_free_ns <= now + BACKLOG_NS;
}

/* Books f on port p's wire and queues it. */
static void enqueue(hub *h, port *p, frame *f, uint64_t now) {
  uint64_t start = p->wire_free_ns > now ? p->wire_free_ns : now;
  p->wire_free_ns = start + (uint64_t)(h->ns_per_byte * (double)f->len);
  f->due_ns = (h->ns_per_byte ? p->wire_free_ns : now) + h->delay_ns;
  f->next = NULL;
  if (p->tail) p->tail->next = f;
  else p->head = f;
  p->tail = f;
  h->queued_bytes += f->len;
}

/* Reads what port i has (up to READ_BURST frames, while its wire is open).
 * Returns 0, or -1 on a read error other than "nothing more". */
static int read_port(hub *h, int i, unsigned char *buf) {
  port *p = &h->ports[i];
  for (int k = 0; k < READ_BURST; k++) {
    uint64_t now = timer_now_ns();
    if (!wire_open(h, p, now)) return 0;
    ssize_t n = read(p->fd, buf, MAX_FRAME);
    if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (n < 14) continue;
    h->stats.frames++;
    h->stats.bytes += (uint64_t)n;
    memcpy(p->mac, buf + 6, 6);
    p->mac_known = 1;
    frame *f = h->queued_bytes + (size_t)n <= QUEUE_LIMIT ? malloc(sizeof *f + (size_t)n) : NULL;
    if (!f) {
      h->stats.dropped++;
      continue;
    }
    f->len = (size_t)n;
    memcpy(f->data, buf, (size_t)n);
    enqueue(h, p, f, timer_now_ns());
  }
  return 0;
}

/* Nanoseconds until the next frame is due or a booked wire reopens; -1: none. */
static int64_t next_event_ns(const hub *h, uint64_t now) {
  int64_t wait = -1;
  int i = earliest(h);
  if (i >= 0) wait = (int64_t)(h->ports[i].head->due_ns - now);
  for (int k = 0; k < h->n; k++) {
    if (wire_open(h, &h->ports[k], now)) continue;
    int64_t reopen = (int64_t)(h->ports[k].wire_free_ns - BACKLOG_NS - now);
    if (wait < 0 || reopen < wait) wait = reopen;
  }
  return wait < 0 ? -1 : wait > 0 ? wait : 0;
}

/* Forwards until a stop signal. Returns 0, or 1 after a read error. */
static int run(hub *h, const sigset_t *wait_mask) {
  static unsigned char buf[MAX_FRAME];
  struct pollfd fds[MAX_PORTS];
  int which[MAX_PORTS];
  while (!stop_signal) {
    deliver_due(h);
    uint64_t now = timer_now_ns();
    int n = 0;
    for (int i = 0; i < h->n; i++) {
      if (!wire_open(h, &h->ports[i], now)) continue;
      fds[n] = (struct pollfd){.fd = h->ports[i].fd, .events = POLLIN};
      which[n++] = i;
    }
    int64_t wait = next_event_ns(h, now);
    struct timespec ts = {.tv_sec = wait / 1000000000, .tv_nsec = wait % 1000000000};
    int ready = ppoll(fds, (nfds_t)n, wait < 0 ? NULL : &ts, wait_mask);
    if (ready < 0 && errno != EINTR) return perror("netns_hub: ppoll"), 1;
    for (int k = 0; k < n && ready > 0; k++) {
      if (!(fds[k].revents & POLLIN)) continue;
      if (read_port(h, which[k], buf)) {
        fprintf(stderr, "netns_hub: reading port %s: %s\n", h->ports[which[k]].name, strerror(errno));
        return 1;
      }
    }
  }
  return 0;
}

/* The upper bound of the bucket holding quantile q of the lateness, in us. */
static uint64_t late_quantile_us(const hub_stats *s, double q) {
  uint64_t total = 0, seen = 0;
  for (int k = 0; k < LATE_BUCKETS; k++) total += s->late_hist[k];
  for (int k = 0; k < LATE_BUCKETS; k++) {
    seen += s->late_hist[k];
    if (total && (double)seen >= q * (double)total) return 1ull << k;
  }
  return 0;
}

static void print_stats(const hub *h, const char *rate, const char *delay) {
  const hub_stats *s = &h->stats;
  uint64_t delivered = 0;
  for (int k = 0; k < LATE_BUCKETS; k++) delivered += s->late_hist[k];
  fprintf(stderr,
          "netns_hub: %d ports, rate %s, delay %s: %llu frames (%llu bytes) read, %llu dropped; held past due: "
          "mean %.1f us, p50 < %llu us, p99 < %llu us, max %.1f us\n",
          h->n, rate, delay, (unsigned long long)s->frames, (unsigned long long)s->bytes,
          (unsigned long long)s->dropped, delivered ? (double)s->late_sum_ns / (double)delivered / 1e3 : 0.0,
          (unsigned long long)late_quantile_us(s, 0.5), (unsigned long long)late_quantile_us(s, 0.99),
          (double)s->late_max_ns / 1e3);
}

/* Parses the options into h; returns the index of the first port, or -1. */
static int parse_args(int argc, char **argv, hub *h, const char **rate, const char **delay, const char **log) {
  int i = 1;
  for (; i + 1 < argc && !strncmp(argv[i], "--", 2); i += 2) {
    if (!strcmp(argv[i], "--rate")) *rate = argv[i + 1];
    else if (!strcmp(argv[i], "--delay")) *delay = argv[i + 1];
    else if (!strcmp(argv[i], "--log")) *log = argv[i + 1];
    else return fprintf(stderr, "netns_hub: unknown option '%s'\n", argv[i]), -1;
  }
  if (parse_rate(*rate, &h->ns_per_byte))
    return fprintf(stderr, "netns_hub: rate '%s': give none or e.g. 10gbit, 500mbit\n", *rate), -1;
  if (parse_delay(*delay, &h->delay_ns))
    return fprintf(stderr, "netns_hub: delay '%s': give e.g. 50us, 0.5ms (under 10 s)\n", *delay), -1;
  if (argc - i < 2 || argc - i > MAX_PORTS)
    return fprintf(stderr, "netns_hub: give 2 to %d ports NETNS/IFNAME\n", MAX_PORTS), -1;
  return i;
}

/* Creates every port's TAP; returns 0, or 1 with every TAP closed. */
static int open_ports(hub *h, int argc, char **argv, int first) {
  int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) return perror("netns_hub: /proc/self/ns/net"), 1;
  for (int i = first; i < argc; i++) {
    port *p = &h->ports[h->n];
    p->name = argv[i];
    if ((p->fd = tap_open(argv[i], home)) < 0) break;
    h->n++;
  }
  close(home);
  if (h->n == argc - first) return 0;
  while (h->n > 0) close(h->ports[--h->n].fd);
  return 1;
}

/* Forks; the parent exits 0, the child returns with stdin and stdout on
 * /dev/null and stderr on the log, in a session of its own. */
static int detach(const char *log) {
  int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (logfd < 0 || null < 0) {
    fprintf(stderr, "netns_hub: cannot open the log %s: %s\n", log, strerror(errno));
    return 1;
  }
  pid_t pid = fork();
  if (pid < 0) return perror("netns_hub: fork"), 1;
  if (pid > 0) _exit(0);
  setsid();
  dup2(null, 0);
  dup2(null, 1);
  dup2(logfd, 2);
  close(null);
  close(logfd);
  return 0;
}

int main(int argc, char **argv) {
  static hub h;
  const char *rate = "none", *delay = "0us", *log = "/dev/null";
  int first = parse_args(argc, argv, &h, &rate, &delay, &log);
  if (first < 0) return 2;
  /* The kernel's default 50 us of timer slack would add itself to every
   * delay; 1 ns asks for the hrtimer's own precision. */
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  prctl(PR_SET_NAME, "netns_hub", 0, 0, 0); /* the name hosts.sh stops it by, whatever the file's */
  /* A switch does not share the hosts' CPUs; here it must, so it runs
   * ahead of them: on two busy cores, with the ranks' priority, frames
   * waited for a core for up to 5 ms past due (docs/scaling.md). */
  struct sched_param fifo = {.sched_priority = 10};
  if (sched_setscheduler(0, SCHED_FIFO, &fifo))
    fprintf(stderr, "netns_hub: warning: no real-time priority (%s): frames may wait for a core\n", strerror(errno));
  sigset_t stops, wait_mask;
  sigemptyset(&stops);
  sigaddset(&stops, SIGTERM);
  sigaddset(&stops, SIGINT);
  sigprocmask(SIG_BLOCK, &stops, &wait_mask); /* delivered only inside ppoll */
  struct sigaction sa = {.sa_handler = on_stop};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGHUP, SIG_IGN);
  if (open_ports(&h, argc, argv, first) || detach(log)) return 1;
  int rc = run(&h, &wait_mask);
  print_stats(&h, rate, delay);
  return rc;
}
