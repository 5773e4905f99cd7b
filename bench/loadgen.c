/*
 * The load generator of `npm run bench`: one thread, epoll, WebSocket client side only.
 *
 * Why C: the server under test must be the bottleneck. A generator written in Node would spend
 * about as much CPU per message as the server it measures. This one pre-builds its masked frames
 * once, pipelines many of them per write(), and only scans frame headers on the way back, so it
 * costs a small fraction of what a server spends per message (the runner reports its CPU time).
 *
 * Modes (all print one JSON object on stdout at the end):
 *   echo      --conns C --inflight K --size S [--binary] --warmup s --duration s
 *             keeps K messages in flight on each of C connections; counts the echoes.
 *             With --deflate-hex H it offers permessage-deflate and sends the compressed
 *             payload H (hex) with RSV1; echoes are counted, never inflated.
 *   fanout    --conns N --inflight K --size S --warmup s --duration s
 *             N subscribers on /sub, one publisher on /pub; the publisher keeps K messages
 *             ahead of the subscribers' average; counts deliveries to subscribers.
 *   handshake --conns C --duration s
 *             C at a time: connect, upgrade, send a close frame, wait for the server's close.
 *   idle      --conns N
 *             opens N connections, prints {"ready":N}, waits for a line on stdin, exits.
 *
 * Source addresses rotate over 127.0.0.1-127.0.0.8 so that tens of thousands of short
 * connections do not run out of ephemeral ports or trip over TIME_WAIT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum { M_ECHO, M_FANOUT, M_HANDSHAKE, M_IDLE };
enum { S_CONNECTING, S_UPGRADING, S_OPEN, S_CLOSING, S_DONE };

typedef struct {
  int fd;
  int state;
  int is_pub;
  /* Response head bytes seen so far (up to the blank line). */
  char head[512];
  int head_len;
  /* Frame scanning of server output: header bytes gathered, payload bytes left to skip. */
  unsigned char hdr[10];
  int hdr_len;
  uint64_t skip;
  int in_payload;
  /* Frames owed to the server and how far into the block the last partial write got. */
  long owed;
  long partial;
  int want_out;
  uint64_t received; /* complete frames received */
} conn_t;

static int mode, nconns = 10, inflight = 1, msg_size = 32, binary = 0;
/* permessage-deflate: the payload, already compressed by the runner, is sent with RSV1. */
static unsigned char *deflated;
static int rsv1;
static double warmup = 1, duration = 3;
static const char *host = "127.0.0.1";
static int port;
static int epfd;
static conn_t *conns;
static unsigned char *block; /* `inflight` copies of the masked frame */
static long frame_len;
static char req_sub[512], req_pub[512];
static int req_sub_len, req_pub_len;
static unsigned char close_frame[8];
static int src_rot;
static int measuring;
static uint64_t m_msgs, m_bytes, m_handshakes, m_errors, total_sent, fan_delivered;
static long fan_sent;
static conn_t *publisher;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(2);
}

static long build_frame(unsigned char *out, int opcode, const unsigned char *payload, long n) {
  static const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
  long h = 0;
  out[h++] = 0x80 | (opcode < 8 ? rsv1 : 0) | opcode;
  if (n < 126) {
    out[h++] = 0x80 | n;
  } else if (n < 65536) {
    out[h++] = 0x80 | 126;
    out[h++] = n >> 8;
    out[h++] = n & 0xff;
  } else {
    out[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--) out[h++] = (n >> (8 * i)) & 0xff;
  }
  memcpy(out + h, key, 4);
  h += 4;
  for (long i = 0; i < n; i++) out[h + i] = payload[i] ^ key[i & 3];
  return h + n;
}

static void ep_set(conn_t *c, int out) {
  struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl mod");
  c->want_out = out;
}

static void open_conn(conn_t *c) {
  memset(c, 0, sizeof *c);
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c->fd < 0) die("socket");
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = 0};
  src.sin_addr.s_addr = htonl(0x7f000001 + (src_rot++ & 7));
  if (strcmp(host, "127.0.0.1") == 0) bind(c->fd, (struct sockaddr *)&src, sizeof src);
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, host, &dst.sin_addr);
  c->state = S_CONNECTING;
  if (connect(c->fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) die("connect");
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl add");
  c->want_out = 1;
}

static void close_conn(conn_t *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->state = S_DONE;
}

/* Writes as much of the owed frames as the socket takes. */
static void pump(conn_t *c) {
  while (c->owed > 0) {
    long frames = c->owed < inflight ? c->owed : inflight;
    long len = frames * frame_len - c->partial;
    ssize_t w = write(c->fd, block + c->partial, len);
    if (w < 0) {
      if (errno == EAGAIN) break;
      m_errors++;
      close_conn(c);
      return;
    }
    long done = (c->partial + w) / frame_len;
    c->partial = (c->partial + w) % frame_len;
    c->owed -= done;
    total_sent += done;
    if (c->is_pub) fan_sent += done;
    if (w < len) break;
  }
  int need_out = c->owed > 0;
  if (need_out != c->want_out) ep_set(c, need_out);
}

/* Scans server frames in buf; returns how many complete frames it saw. */
static long scan_frames(conn_t *c, const unsigned char *buf, long n, int *saw_close) {
  long frames = 0, i = 0;
  while (i < n) {
    if (c->in_payload) {
      long take = (uint64_t)(n - i) < c->skip ? n - i : (long)c->skip;
      c->skip -= take;
      i += take;
      if (c->skip == 0) {
        c->in_payload = 0;
        frames++;
      }
      continue;
    }
    c->hdr[c->hdr_len++] = buf[i++];
    if (c->hdr_len < 2) continue;
    int len7 = c->hdr[1] & 0x7f;
    int need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
    if (c->hdr_len < need) continue;
    uint64_t len = len7;
    if (len7 == 126) len = (c->hdr[2] << 8) | c->hdr[3];
    if (len7 == 127) {
      len = 0;
      for (int k = 2; k < 10; k++) len = (len << 8) | c->hdr[k];
    }
    if ((c->hdr[0] & 0x0f) == 8) *saw_close = 1;
    if (measuring && (c->hdr[0] & 0x0f) < 8) m_bytes += len;
    c->hdr_len = 0;
    if (len == 0) frames++;
    else {
      c->skip = len;
      c->in_payload = 1;
    }
  }
  return frames;
}

/* Cleared while echo connections are opened ahead of the traffic (see main). */
static int echo_go = 1;

static void on_open(conn_t *c) {
  c->state = S_OPEN;
  if (mode == M_ECHO) {
    c->owed = inflight;
    if (echo_go) pump(c);
  } else if (mode == M_HANDSHAKE) {
    if (write(c->fd, close_frame, sizeof close_frame) < 0) m_errors++;
    c->state = S_CLOSING;
  }
}

static void restart_handshake(conn_t *c) {
  close_conn(c);
  open_conn(c);
}

static unsigned char rbuf[1 << 18];

static void on_readable(conn_t *c) {
  for (;;) {
    ssize_t r = read(c->fd, rbuf, sizeof rbuf);
    if (r < 0) {
      if (errno == EAGAIN) return;
      if (mode == M_HANDSHAKE && c->state == S_CLOSING) {
        /* A reset after our close is a finished close handshake as far as we care. */
        if (measuring) m_handshakes++;
      } else m_errors++;
      if (mode == M_HANDSHAKE) restart_handshake(c);
      else close_conn(c);
      return;
    }
    if (r == 0) {
      if (mode == M_HANDSHAKE && c->state == S_CLOSING) {
        if (measuring) m_handshakes++;
      } else m_errors++;
      if (mode == M_HANDSHAKE) restart_handshake(c);
      else close_conn(c);
      return;
    }
    long off = 0;
    if (c->state == S_UPGRADING) {
      /* Gather the response head up to the blank line; what follows is frames. */
      while (off < r && c->state == S_UPGRADING) {
        if (c->head_len < (int)sizeof c->head - 1) c->head[c->head_len++] = rbuf[off];
        off++;
        if (c->head_len >= 4 && memcmp(c->head + c->head_len - 4, "\r\n\r\n", 4) == 0) {
          c->head[c->head_len] = 0;
          if (strncmp(c->head, "HTTP/1.1 101", 12) != 0) {
            fprintf(stderr, "loadgen: upgrade refused: %.80s\n", c->head);
            m_errors++;
            close_conn(c);
            return;
          }
          on_open(c);
        }
      }
    }
    if (off < r && c->state != S_UPGRADING) {
      int saw_close = 0;
      long frames = scan_frames(c, rbuf + off, r - off, &saw_close);
      c->received += frames;
      if (mode == M_ECHO) {
        if (measuring) m_msgs += frames;
        c->owed += frames;
        pump(c);
      } else if (mode == M_FANOUT && !c->is_pub) {
        fan_delivered += frames;
        if (measuring) m_msgs += frames;
      }
    }
    if (c->fd < 0) return;
  }
}

static void on_writable(conn_t *c) {
  if (c->state == S_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      m_errors++;
      if (mode == M_HANDSHAKE) restart_handshake(c);
      else close_conn(c);
      return;
    }
    const char *req = c->is_pub ? req_pub : req_sub;
    int req_len = c->is_pub ? req_pub_len : req_sub_len;
    if (write(c->fd, req, req_len) != req_len) die("write request");
    c->state = S_UPGRADING;
    ep_set(c, 0);
    return;
  }
  pump(c);
}

static void usage(void) {
  fprintf(stderr, "usage: loadgen echo|fanout|handshake|idle --port P [--conns N] [--inflight K] "
                  "[--size S] [--binary] [--warmup s] [--duration s]\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  if (!strcmp(argv[1], "echo")) mode = M_ECHO;
  else if (!strcmp(argv[1], "fanout")) mode = M_FANOUT;
  else if (!strcmp(argv[1], "handshake")) mode = M_HANDSHAKE;
  else if (!strcmp(argv[1], "idle")) mode = M_IDLE;
  else usage();
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : "0";
    if (!strcmp(a, "--binary")) binary = 1;
    else if (!strcmp(a, "--port")) port = atoi(v), i++;
    else if (!strcmp(a, "--host")) host = v, i++;
    else if (!strcmp(a, "--conns")) nconns = atoi(v), i++;
    else if (!strcmp(a, "--inflight")) inflight = atoi(v), i++;
    else if (!strcmp(a, "--size")) msg_size = atoi(v), i++;
    else if (!strcmp(a, "--warmup")) warmup = atof(v), i++;
    else if (!strcmp(a, "--duration")) duration = atof(v), i++;
    else if (!strcmp(a, "--deflate-hex")) {
      size_t n = strlen(v) / 2;
      deflated = malloc(n + 1);
      for (size_t k = 0; k < n; k++) sscanf(v + 2 * k, "%2hhx", &deflated[k]);
      msg_size = (int)n;
      rsv1 = 0x40;
      i++;
    }
    else usage();
  }
  if (port <= 0 || nconns <= 0 || inflight <= 0 || msg_size < 0) usage();

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  unsigned char *payload = malloc(msg_size + 1);
  for (int i = 0; i < msg_size; i++) payload[i] = binary ? (unsigned char)(i * 31 + 7) : 'a' + i % 26;
  if (deflated) memcpy(payload, deflated, msg_size);
  unsigned char *one = malloc(msg_size + 14);
  frame_len = build_frame(one, binary ? 2 : 1, payload, msg_size);
  block = malloc(frame_len * inflight);
  for (int i = 0; i < inflight; i++) memcpy(block + i * frame_len, one, frame_len);
  unsigned char code[2] = {0x03, 0xe8};
  build_frame(close_frame, 8, code, 2);

  const char *fmt = "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n";
  /* No client context takeover: every pre-built frame must inflate on its own. */
  const char *ext = rsv1 ? "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n" : "";
  req_sub_len = snprintf(req_sub, sizeof req_sub, fmt, mode == M_FANOUT ? "/sub" : "/", host, port, ext);
  req_pub_len = snprintf(req_pub, sizeof req_pub, fmt, "/pub", host, port, ext);

  epfd = epoll_create1(0);
  if (epfd < 0) die("epoll_create1");
  int total = nconns + (mode == M_FANOUT ? 1 : 0);
  conns = calloc(total, sizeof *conns);
  struct epoll_event events[256];
  double t0 = now();

  /* Fan-out, idle and echo over many connections: open every connection first, at most 256
     handshakes at a time (10,000 SYNs at once overflow the server's accept backlog, and the
     retransmits would land after the measured window). Echo traffic starts once all are open. */
  if (mode == M_FANOUT || mode == M_IDLE || (mode == M_ECHO && nconns > 256)) {
    int opened = 0, open_done = 0;
    if (mode == M_ECHO) echo_go = 0;
    while (open_done < nconns) {
      while (opened < nconns && opened - open_done < 256) open_conn(&conns[opened++]);
      int n = epoll_wait(epfd, events, 256, 1000);
      for (int e = 0; e < n; e++) {
        conn_t *c = events[e].data.ptr;
        int before = c->state;
        if (events[e].events & (EPOLLOUT | EPOLLERR | EPOLLHUP) && c->state == S_CONNECTING) on_writable(c);
        else if (events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
        if (before != S_OPEN && (c->state == S_OPEN || c->state == S_DONE)) open_done++;
      }
      if (now() - t0 > 60) {
        fprintf(stderr, "loadgen: only %d of %d connections opened in 60 s\n", open_done, nconns);
        return 3;
      }
    }
    if (mode == M_IDLE) {
      int ok = 0;
      for (int i = 0; i < nconns; i++) ok += conns[i].state == S_OPEN;
      printf("{\"ready\":%d,\"errors\":%llu,\"openSeconds\":%.3f}\n", ok, (unsigned long long)m_errors, now() - t0);
      fflush(stdout);
      char line[16];
      if (fgets(line, sizeof line, stdin) == NULL) {
        /* stdin closed: the runner is gone; exit all the same. */
      }
      return 0;
    }
    if (mode == M_ECHO) {
      /* Every connection is open: now the traffic starts, all at once. */
      echo_go = 1;
      for (int i = 0; i < nconns; i++)
        if (conns[i].state == S_OPEN) pump(&conns[i]);
    }
    if (mode == M_FANOUT) {
      publisher = &conns[nconns];
      open_conn(publisher);
      publisher->is_pub = 1;
    }
  } else {
    for (int i = 0; i < nconns; i++) open_conn(&conns[i]);
  }

  double start = now(), mstart = start + warmup, mend = mstart + duration, last_progress = start;
  uint64_t last_total = 0;
  struct rusage ru0, ru1;
  int started = 0;
  for (;;) {
    double t = now();
    if (!started && t >= mstart) {
      started = measuring = 1;
      getrusage(RUSAGE_SELF, &ru0);
      mstart = t;
    }
    if (t >= mend) break;
    if (mode == M_FANOUT && publisher->state == S_OPEN) {
      /* Keep the publisher `inflight` messages ahead of the average subscriber. */
      long ahead = fan_sent + publisher->owed - (long)(fan_delivered / nconns);
      if (ahead < inflight) {
        publisher->owed += inflight - ahead;
        pump(publisher);
      }
    }
    int n = epoll_wait(epfd, events, 256, 50);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int e = 0; e < n; e++) {
      conn_t *c = events[e].data.ptr;
      if (c->fd < 0) continue;
      uint32_t ev = events[e].events;
      int fd = c->fd;
      if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
      /* A handshake slot may have been reopened on a new socket: this event is not for it. */
      if (c->fd == fd && (ev & EPOLLOUT)) on_writable(c);
    }
    /* Give up early when nothing moves for 5 s: the server is stuck or gone. */
    uint64_t progress = m_msgs + m_handshakes + total_sent + fan_delivered;
    if (progress != last_total) {
      last_total = progress;
      last_progress = t;
    } else if (t - last_progress > 5) {
      fprintf(stderr, "loadgen: no progress for 5 s, stopping\n");
      break;
    }
  }
  double elapsed = now() - mstart;
  getrusage(RUSAGE_SELF, &ru1);
  double cpu = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
               (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
  if (!started) elapsed = 0, cpu = 0;
  printf("{\"mode\":\"%s\",\"seconds\":%.4f,\"messages\":%llu,\"bytes\":%llu,\"handshakes\":%llu,"
         "\"errors\":%llu,\"cpuSeconds\":%.4f}\n",
         argv[1], elapsed, (unsigned long long)m_msgs, (unsigned long long)m_bytes, (unsigned long long)m_handshakes,
         (unsigned long long)m_errors, cpu);
  return 0;
}
