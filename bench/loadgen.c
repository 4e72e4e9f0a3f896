/*
 * loadgen: the TLS load generator of tlsreply's benchmark (bench/run.py).
 *
 * One thread, epoll (edge-triggered), non-blocking sockets, --concurrency
 * connections in flight to 127.0.0.1:PORT. Each connection: TCP connect,
 * SSL_connect with SNI, read until the server's close_notify, compare the
 * reply byte for byte with --expect, send our own close_notify, close.
 * Certificates are not verified: the client's CPU is the scarce resource,
 * and the harness checks the servers' certificates once before measuring.
 *
 * Modes:
 *   rate (default)  handshakes for --warmup then --duration seconds (or
 *                   --count handshakes), then one JSON object on stdout;
 *                   --marks also prints "start" and "end" lines at the edges
 *                   of the measured window, so the harness can read the
 *                   server's CPU over exactly that window.
 *   --resume        one priming connection first; its session (read after
 *                   the close_notify, so TLS 1.3 tickets have arrived) is
 *                   offered on every later connection.
 *   --idle N        N TCP connections that send nothing;
 *   --hold N        N connections that complete the handshake, then stall
 *                   (no read, no close);
 *   --burst N       N connections started at once (whatever --concurrency
 *                   says) that complete the handshake, read the reply and
 *                   the server's close_notify, then stall: no close_notify
 *                   of their own, no close.
 *                   All three print "ready" once all N are in place, wait
 *                   for stdin EOF, a signal or --max-hold seconds, close
 *                   them and print the JSON object (without "ready" if not
 *                   all N could be placed).
 *
 * Nothing waits without a bound: every connection has a deadline
 * (--timeout), every epoll_wait a timeout, every phase an end.
 *
 * Build: gcc -O2 -Wall -Wextra -o loadgen loadgen.c -lssl -lcrypto
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

enum mode { MODE_RATE, MODE_IDLE, MODE_HOLD, MODE_BURST };

enum state {
    ST_FREE,
    ST_CONNECTING,
    ST_HANDSHAKE,
    ST_READING,
    ST_SHUTDOWN,
    ST_PLACED, /* idle: connected; hold: handshake done; burst: reply read */
};

enum error_kind {
    E_CONNECT,
    E_HANDSHAKE,
    E_WRONG_REPLY,
    E_NO_CLOSE_NOTIFY,
    E_RESET,
    E_TIMEOUT,
    E_KINDS,
};

static const char *const error_names[E_KINDS] = {
    "connect", "handshake", "wrong_reply", "no_close_notify", "reset", "timeout",
};

enum phase { PH_PRIMING, PH_WARMUP, PH_MEASURE, PH_DRAIN };

struct conn {
    int fd;
    enum state state;
    SSL *ssl;
    double start;    /* when connect() was called */
    double replied;  /* when the server's close_notify arrived */
    double deadline; /* abort (as a timeout) after this */
    size_t got;      /* reply bytes received and matched so far */
    int server_closed;
};

struct config {
    struct sockaddr_in address;
    const char *sni;
    int tls13;
    int resume;
    int concurrency;
    double duration;
    double warmup;
    long count;
    int duration_given;
    long max_errors;
    unsigned char *expect;
    size_t expect_len;
    double timeout;
    enum mode mode;
    long places; /* N of --idle / --hold / --burst */
    double max_hold;
    int marks;
};

static struct config cfg;
static SSL_CTX *ctx;
static SSL_SESSION *session; /* the priming connection's session (--resume) */
static int epfd = -1;
static struct conn *conns;
static long nconns;
static volatile sig_atomic_t stop_requested;

/* Counters. */
static long errors[E_KINDS];
static long errors_in_window;
static long handshakes;  /* successful connections completed in the window */
static long resumed;     /* of those, resumed */
static long completed;   /* successful connections, every phase */
static long in_flight;
static long placed;      /* idle/hold: connections in place */
static long closed_by_server; /* idle/hold: server closed while we held */
static enum phase phase;
static char protocol[32] = "";
static char cipher[64] = "";

static uint32_t *latencies; /* microseconds, measured window only */
static size_t nlatencies, latencies_cap;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    exit(2);
}

static void on_signal(int signum)
{
    (void)signum;
    stop_requested = 1;
}

static void say(const char *line)
{
    fputs(line, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

/* Decode backslash escapes (\n \r \t \0 \\ \xHH) of --expect. */
static void set_expect(const char *text)
{
    size_t n = strlen(text);
    unsigned char *out = malloc(n + 1);
    size_t j = 0;
    if (!out)
        die("out of memory");
    for (size_t i = 0; i < n; i++) {
        if (text[i] != '\\' || i + 1 == n) {
            out[j++] = (unsigned char)text[i];
            continue;
        }
        char c = text[++i];
        switch (c) {
        case 'n': out[j++] = '\n'; break;
        case 'r': out[j++] = '\r'; break;
        case 't': out[j++] = '\t'; break;
        case '0': out[j++] = '\0'; break;
        case '\\': out[j++] = '\\'; break;
        case 'x': {
            unsigned value;
            if (i + 2 >= n || sscanf(text + i + 1, "%2x", &value) != 1)
                die("--expect: bad \\x escape");
            out[j++] = (unsigned char)value;
            i += 2;
            break;
        }
        default: die("--expect: unknown escape \\%c", c);
        }
    }
    if (j == 0)
        die("--expect: empty reply");
    cfg.expect = out;
    cfg.expect_len = j;
}

static void record_latency(double seconds)
{
    if (nlatencies == latencies_cap) {
        latencies_cap = latencies_cap ? latencies_cap * 2 : 65536;
        latencies = realloc(latencies, latencies_cap * sizeof *latencies);
        if (!latencies)
            die("out of memory");
    }
    double us = seconds * 1e6;
    latencies[nlatencies++] = us > 4e9 ? 4000000000u : (uint32_t)us;
}

static void release(struct conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd); /* also leaves the epoll set */
        c->fd = -1;
    }
    if (c->state != ST_FREE && c->state != ST_PLACED)
        in_flight--;
    else if (c->state == ST_PLACED)
        placed--;
    c->state = ST_FREE;
}

static void fail(struct conn *c, enum error_kind kind)
{
    errors[kind]++;
    if (phase == PH_MEASURE)
        errors_in_window++;
    if (getenv("LOADGEN_DEBUG")) {
        unsigned long e = ERR_peek_error();
        char text[256] = "";
        if (e)
            ERR_error_string_n(e, text, sizeof text);
        fprintf(stderr, "loadgen: %s (errno %d %s) %s\n", error_names[kind], errno,
                strerror(errno), text);
    }
    ERR_clear_error();
    release(c);
}

static void succeed(struct conn *c)
{
    completed++;
    if (phase == PH_PRIMING && cfg.resume && !session) {
        session = SSL_get1_session(c->ssl);
        if (session && !SSL_SESSION_is_resumable(session)) {
            SSL_SESSION_free(session);
            session = NULL;
        }
    }
    if (phase == PH_MEASURE && !(cfg.count && handshakes >= cfg.count)) {
        handshakes++;
        if (SSL_session_reused(c->ssl))
            resumed++;
        record_latency(c->replied - c->start);
        if (!protocol[0]) {
            snprintf(protocol, sizeof protocol, "%s", SSL_get_version(c->ssl));
            snprintf(cipher, sizeof cipher, "%s", SSL_get_cipher_name(c->ssl));
        }
    }
    release(c);
}

/* Classify a failed SSL call: a reset, an EOF without close_notify, or
 * something else (returned as `otherwise`). */
static enum error_kind classify(struct conn *c, int ret, enum error_kind otherwise)
{
    int err = SSL_get_error(c->ssl, ret);
    if (err == SSL_ERROR_SYSCALL) {
        if (errno == ECONNRESET || errno == EPIPE)
            return E_RESET;
        return otherwise == E_HANDSHAKE ? E_HANDSHAKE : E_NO_CLOSE_NOTIFY;
    }
    if (err == SSL_ERROR_SSL &&
        ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
        return otherwise == E_HANDSHAKE ? E_HANDSHAKE : E_NO_CLOSE_NOTIFY;
    return otherwise;
}

static void drive(struct conn *c);

static void start_tls(struct conn *c)
{
    c->ssl = SSL_new(ctx);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd))
        die("SSL_new failed");
    SSL_set_tlsext_host_name(c->ssl, cfg.sni);
    if (cfg.resume && session)
        SSL_set_session(c->ssl, session);
    SSL_set_connect_state(c->ssl);
    c->state = ST_HANDSHAKE;
}

static void start_connection(struct conn *c, double t)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->ssl = NULL;
    c->got = 0;
    c->server_closed = 0;
    c->start = t;
    c->deadline = t + cfg.timeout;
    c->state = ST_CONNECTING;
    in_flight++;
    if (c->fd < 0) {
        fail(c, E_CONNECT);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.ptr = c,
    };
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    if (connect(c->fd, (struct sockaddr *)&cfg.address, sizeof cfg.address) == 0) {
        drive(c);
    } else if (errno != EINPROGRESS) {
        fail(c, E_CONNECT);
    }
    /* else: EPOLLOUT reports the result */
}

static void drive(struct conn *c)
{
    int ret;
    unsigned char buffer[4096];

    switch (c->state) {
    case ST_CONNECTING: {
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr) {
            errno = soerr;
            fail(c, E_CONNECT);
            return;
        }
        if (cfg.mode == MODE_IDLE) {
            c->state = ST_PLACED;
            in_flight--;
            placed++;
            return;
        }
        start_tls(c);
    }
        /* fall through */
    case ST_HANDSHAKE:
        ret = SSL_do_handshake(c->ssl);
        if (ret != 1) {
            int err = SSL_get_error(c->ssl, ret);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
                return;
            fail(c, classify(c, ret, E_HANDSHAKE));
            return;
        }
        if (cfg.mode == MODE_HOLD) {
            c->state = ST_PLACED;
            in_flight--;
            placed++;
            return;
        }
        c->state = ST_READING;
        /* fall through */
    case ST_READING:
        for (;;) {
            ret = SSL_read(c->ssl, buffer, sizeof buffer);
            if (ret > 0) {
                size_t n = (size_t)ret;
                if (c->got + n > cfg.expect_len ||
                    memcmp(buffer, cfg.expect + c->got, n) != 0) {
                    fail(c, E_WRONG_REPLY);
                    return;
                }
                c->got += n;
                continue;
            }
            int err = SSL_get_error(c->ssl, ret);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
                return;
            if (err == SSL_ERROR_ZERO_RETURN) {
                if (c->got != cfg.expect_len) {
                    fail(c, E_WRONG_REPLY);
                    return;
                }
                c->replied = now();
                if (cfg.mode == MODE_BURST) {
                    /* Stall: keep the socket, send nothing more. */
                    c->state = ST_PLACED;
                    in_flight--;
                    placed++;
                    return;
                }
                c->state = ST_SHUTDOWN;
                break;
            }
            fail(c, classify(c, ret, E_NO_CLOSE_NOTIFY));
            return;
        }
        /* fall through */
    case ST_SHUTDOWN:
        ret = SSL_shutdown(c->ssl);
        if (ret < 0) {
            int err = SSL_get_error(c->ssl, ret);
            if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ)
                return;
            /* The server may close as soon as its close_notify is out
             * (nginx does); ours then meets a closed socket. The reply
             * and the server's close_notify were complete: a success. */
            ERR_clear_error();
        }
        succeed(c);
        return;
    case ST_PLACED:
        /* idle/hold: never read; only notice that the server closed. */
        return;
    case ST_FREE:
        return;
    }
}

static void check_deadlines(double t)
{
    for (long i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        if (c->state != ST_FREE && c->state != ST_PLACED && t > c->deadline)
            fail(c, E_TIMEOUT);
    }
}

static struct conn *free_slot(void)
{
    static long next;
    for (long k = 0; k < nconns; k++) {
        long i = (next + k) % nconns;
        if (conns[i].state == ST_FREE) {
            next = i + 1;
            return &conns[i];
        }
    }
    return NULL;
}

static void handle_events(int timeout_ms)
{
    struct epoll_event events[256];
    int n = epoll_wait(epfd, events, 256, timeout_ms);
    if (n < 0) {
        if (errno == EINTR)
            return;
        die("epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
        struct conn *c = events[i].data.ptr;
        if (c == NULL) /* stdin */
            continue;
        if (c->state == ST_PLACED) {
            if ((events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) &&
                !c->server_closed) {
                c->server_closed = 1;
                closed_by_server++;
            }
            continue;
        }
        drive(c);
    }
}

static void abort_all(void)
{
    for (long i = 0; i < nconns; i++)
        if (conns[i].state != ST_FREE)
            release(&conns[i]);
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile(double p)
{
    if (nlatencies == 0)
        return 0;
    size_t index = (size_t)(p * (double)(nlatencies - 1) + 0.5);
    return latencies[index];
}

static long errors_total(void)
{
    long total = 0;
    for (int k = 0; k < E_KINDS; k++)
        total += errors[k];
    return total;
}

static void print_errors(void)
{
    printf("\"errors\": {");
    for (int k = 0; k < E_KINDS; k++)
        printf("%s\"%s\": %ld", k ? ", " : "", error_names[k], errors[k]);
    printf("}, \"errors_total\": %ld", errors_total());
}

/* Rate mode: returns the exit status. */
static int run_rate(void)
{
    double t, warm_end = 0, measure_start = 0, measure_end = 0, stop_at = 0;
    double cpu_start = 0, cpu_end = 0, last_check = 0;
    int interrupted = 0, gave_up = 0;

    /* Priming: one connection, alone, whose session the others resume. */
    t = now();
    phase = cfg.resume ? PH_PRIMING : PH_WARMUP;
    if (phase == PH_PRIMING) {
        start_connection(&conns[0], t);
        while (in_flight > 0 && !stop_requested) {
            handle_events(50);
            check_deadlines(now());
        }
        if (!session) {
            fprintf(stderr, "loadgen: the priming connection gave no resumable "
                            "session\n");
            if (errors_total() == 0)
                errors[E_HANDSHAKE]++;
            stop_requested = 1;
        }
        phase = PH_WARMUP;
    }

    t = now();
    warm_end = t + cfg.warmup;
    /* --count ends the window early; --duration (60 s with --count unless
     * given) always ends it. */
    stop_at = warm_end + (cfg.count && !cfg.duration_given ? 60.0 : cfg.duration);
    if (cfg.warmup <= 0) {
        phase = PH_MEASURE;
        measure_start = t;
        cpu_start = cpu_seconds();
        if (cfg.marks)
            say("start");
    }

    while (!stop_requested) {
        t = now();
        if (phase == PH_WARMUP && t >= warm_end) {
            phase = PH_MEASURE;
            if (cfg.marks)
                say("start");
            measure_start = now();
            cpu_start = cpu_seconds();
        }
        if (!gave_up && errors_total() > cfg.max_errors) {
            /* A server that fails every connection: stop hammering it. */
            gave_up = 1;
            fprintf(stderr, "loadgen: more than %ld errors; stopping\n", cfg.max_errors);
            if (phase == PH_WARMUP) {
                phase = PH_MEASURE;
                measure_start = now();
                cpu_start = cpu_seconds();
                if (cfg.marks)
                    say("start");
            }
        }
        if (phase == PH_MEASURE &&
            (t >= stop_at || gave_up || (cfg.count && handshakes >= cfg.count))) {
            measure_end = now();
            cpu_end = cpu_seconds();
            if (cfg.marks)
                say("end");
            phase = PH_DRAIN;
        }
        if (phase == PH_DRAIN) {
            if (in_flight == 0)
                break;
        } else {
            while (in_flight < cfg.concurrency) {
                struct conn *c = free_slot();
                if (!c)
                    break;
                start_connection(c, now());
            }
        }
        double next = phase == PH_WARMUP ? warm_end : stop_at;
        int wait_ms = (int)((next - t) * 1000) + 1;
        if (wait_ms > 50 || phase == PH_DRAIN)
            wait_ms = 50;
        if (wait_ms < 0)
            wait_ms = 0;
        handle_events(wait_ms);
        t = now();
        if (t - last_check > 0.05) {
            check_deadlines(t);
            last_check = t;
        }
    }
    if (stop_requested) {
        interrupted = phase != PH_DRAIN;
        if (phase == PH_MEASURE) {
            measure_end = now();
            cpu_end = cpu_seconds();
        }
        abort_all();
    }

    qsort(latencies, nlatencies, sizeof *latencies, compare_u32);
    double wall = measure_end > measure_start ? measure_end - measure_start : 0;
    printf("{\"mode\": \"rate\", \"tls\": \"%s\", \"resume\": %s, "
           "\"concurrency\": %d, \"protocol\": \"%s\", \"cipher\": \"%s\", "
           "\"handshakes\": %ld, \"resumed\": %ld, \"resumed_ratio\": %.4f, "
           "\"wall_s\": %.6f, \"rate_per_s\": %.2f, ",
           cfg.tls13 ? "1.3" : "1.2", cfg.resume ? "true" : "false", cfg.concurrency,
           protocol, cipher, handshakes, resumed,
           handshakes ? (double)resumed / (double)handshakes : 0.0, wall,
           wall > 0 ? (double)handshakes / wall : 0.0);
    print_errors();
    printf(", \"errors_in_window\": %ld, \"completed_total\": %ld, "
           "\"latency_us\": {\"p50\": %.0f, \"p99\": %.0f, \"max\": %.0f}, "
           "\"client_cpu_s\": %.6f, \"client_cpu_ratio\": %.4f, "
           "\"interrupted\": %s, \"gave_up\": %s}\n",
           errors_in_window, completed, percentile(0.50), percentile(0.99),
           nlatencies ? (double)latencies[nlatencies - 1] : 0.0, cpu_end - cpu_start,
           wall > 0 ? (cpu_end - cpu_start) / wall : 0.0, interrupted ? "true" : "false",
           gave_up ? "true" : "false");
    fflush(stdout);
    return errors_total() || interrupted ? 1 : 0;
}

/* Idle and hold modes: returns the exit status. */
static int run_places(void)
{
    double t0 = now(), t, last_check = 0;
    long started = 0;
    int stdin_eof = 0;

    phase = PH_MEASURE;
    while (!stop_requested && placed + errors_total() < cfg.places) {
        while (in_flight < cfg.concurrency && started < cfg.places) {
            struct conn *c = free_slot();
            if (!c)
                break;
            start_connection(c, now());
            started++;
        }
        handle_events(50);
        t = now();
        if (t - last_check > 0.05) {
            check_deadlines(t);
            last_check = t;
        }
        if (t - t0 > cfg.timeout + 60)
            break; /* every connection has its own deadline; this is a backstop */
    }
    double setup = now() - t0;
    if (placed < cfg.places)
        stdin_eof = 1; /* not all in place: no "ready", report at once */
    else
        say("ready");

    /* Wait for stdin EOF, a signal or --max-hold. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLHUP, .data.ptr = NULL};
    /* A stdin that epoll cannot watch (a file, /dev/null) leaves the
     * signal and --max-hold to end the wait. */
    epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
    double hold_end = now() + cfg.max_hold;
    while (!stop_requested && !stdin_eof && now() < hold_end) {
        struct epoll_event events[256];
        int n = epoll_wait(epfd, events, 256, 50);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == NULL) {
                char scratch[256];
                ssize_t r = read(0, scratch, sizeof scratch);
                if (r <= 0)
                    stdin_eof = 1;
                continue;
            }
            if (c->state == ST_PLACED &&
                (events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) &&
                !c->server_closed) {
                c->server_closed = 1;
                closed_by_server++;
            }
        }
    }
    double held = now() - t0 - setup;
    long in_place = placed;
    abort_all();
    static const char *const mode_names[] = {"rate", "idle", "hold", "burst"};
    printf("{\"mode\": \"%s\", \"requested\": %ld, \"placed\": %ld, "
           "\"closed_by_server\": %ld, \"setup_s\": %.3f, \"held_s\": %.3f, ",
           mode_names[cfg.mode], cfg.places, in_place, closed_by_server, setup, held);
    print_errors();
    printf("}\n");
    fflush(stdout);
    return errors_total() || in_place < cfg.places ? 1 : 0;
}

static void usage(FILE *out)
{
    fputs(
        "usage: loadgen --port PORT [options]\n"
        "  --host ADDR        loopback address to connect to (127.0.0.1)\n"
        "  --sni NAME         server name sent (localhost)\n"
        "  --tls 1.2|1.3      TLS version (1.3)\n"
        "  --resume           resume the priming connection's session\n"
        "  --concurrency N    connections in flight (48)\n"
        "  --warmup S         seconds before the measured window (1)\n"
        "  --duration S       seconds of the measured window (5)\n"
        "  --count N          end the window after N handshakes (or --duration,\n"
        "                     60 s unless given)\n"
        "  --max-errors N     stop early after more than N errors (1000)\n"
        "  --expect TEXT      the reply, with \\n \\r \\t \\0 \\\\ \\xHH (test\\n)\n"
        "  --timeout S        per-connection deadline (10)\n"
        "  --marks            print 'start' and 'end' at the window's edges\n"
        "  --idle N           hold N TCP connections that send nothing\n"
        "  --hold N           hold N connections after their handshake\n"
        "  --burst N          start N connections at once; hold each after its\n"
        "                     reply and the server's close_notify\n"
        "  --max-hold S       longest wait for stdin EOF, --idle/--hold/--burst (120)\n"
        "  --version          print the OpenSSL version it runs with\n",
        out);
}

static double parse_double(const char *text, const char *name)
{
    char *end;
    double value = strtod(text, &end);
    if (*end || value < 0)
        die("%s: not a non-negative number: %s", name, text);
    return value;
}

static long parse_long(const char *text, const char *name)
{
    char *end;
    long value = strtol(text, &end, 10);
    if (*end || value < 0)
        die("%s: not a non-negative integer: %s", name, text);
    return value;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"port", required_argument, 0, 'p'},
        {"host", required_argument, 0, 'H'},
        {"sni", required_argument, 0, 's'},
        {"tls", required_argument, 0, 'v'},
        {"resume", no_argument, 0, 'r'},
        {"concurrency", required_argument, 0, 'c'},
        {"warmup", required_argument, 0, 'w'},
        {"duration", required_argument, 0, 'd'},
        {"count", required_argument, 0, 'n'},
        {"max-errors", required_argument, 0, 'x'},
        {"expect", required_argument, 0, 'e'},
        {"timeout", required_argument, 0, 't'},
        {"marks", no_argument, 0, 'm'},
        {"idle", required_argument, 0, 'I'},
        {"hold", required_argument, 0, 'L'},
        {"burst", required_argument, 0, 'B'},
        {"max-hold", required_argument, 0, 'M'},
        {"version", no_argument, 0, 'V'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    long port = 0;
    const char *host = "127.0.0.1";

    cfg.sni = "localhost";
    cfg.tls13 = 1;
    cfg.concurrency = 48;
    cfg.warmup = 1;
    cfg.duration = 5;
    cfg.timeout = 10;
    cfg.max_hold = 120;
    cfg.max_errors = 1000;
    cfg.mode = MODE_RATE;
    set_expect("test\\n");

    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'p': port = parse_long(optarg, "--port"); break;
        case 'H': host = optarg; break;
        case 's': cfg.sni = optarg; break;
        case 'v':
            if (strcmp(optarg, "1.3") == 0)
                cfg.tls13 = 1;
            else if (strcmp(optarg, "1.2") == 0)
                cfg.tls13 = 0;
            else
                die("--tls: 1.2 or 1.3");
            break;
        case 'r': cfg.resume = 1; break;
        case 'c': cfg.concurrency = (int)parse_long(optarg, "--concurrency"); break;
        case 'w': cfg.warmup = parse_double(optarg, "--warmup"); break;
        case 'd':
            cfg.duration = parse_double(optarg, "--duration");
            cfg.duration_given = 1;
            break;
        case 'n': cfg.count = parse_long(optarg, "--count"); break;
        case 'x': cfg.max_errors = parse_long(optarg, "--max-errors"); break;
        case 'e': set_expect(optarg); break;
        case 't': cfg.timeout = parse_double(optarg, "--timeout"); break;
        case 'm': cfg.marks = 1; break;
        case 'I': cfg.mode = MODE_IDLE; cfg.places = parse_long(optarg, "--idle"); break;
        case 'L': cfg.mode = MODE_HOLD; cfg.places = parse_long(optarg, "--hold"); break;
        case 'B': cfg.mode = MODE_BURST; cfg.places = parse_long(optarg, "--burst"); break;
        case 'M': cfg.max_hold = parse_double(optarg, "--max-hold"); break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("%s\n", OpenSSL_version(OPENSSL_VERSION)); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc)
        die("unexpected argument: %s", argv[optind]);
    if (port < 1 || port > 65535)
        die("--port: 1 to 65535 required");
    cfg.address.sin_family = AF_INET;
    cfg.address.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &cfg.address.sin_addr) != 1)
        die("--host: not an IPv4 address: %s", host);
    if ((ntohl(cfg.address.sin_addr.s_addr) >> 24) != 127)
        die("--host: only loopback addresses (127.0.0.0/8) are allowed");
    if (cfg.concurrency < 1 || cfg.concurrency > 100000)
        die("--concurrency: 1 to 100000");
    if (cfg.timeout <= 0)
        die("--timeout must be positive");
    if (cfg.mode != MODE_RATE && (cfg.places < 1 || cfg.places > 100000))
        die("--idle/--hold/--burst: 1 to 100000 connections");
    if (cfg.mode == MODE_BURST)
        cfg.concurrency = (int)cfg.places; /* all at once */
    if (cfg.mode == MODE_RATE && cfg.duration <= 0 && !(cfg.count && !cfg.duration_given))
        die("--duration must be positive");

    /* Die with the harness; never linger as an orphan. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Room for every connection's descriptor. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        die("SSL_CTX_new failed");
    int version = cfg.tls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
    SSL_CTX_set_min_proto_version(ctx, version);
    SSL_CTX_set_max_proto_version(ctx, version);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* Sessions are kept by hand (--resume), not in a client cache. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);

    nconns = cfg.mode == MODE_RATE ? cfg.concurrency : cfg.places;
    conns = calloc((size_t)nconns, sizeof *conns);
    if (!conns)
        die("out of memory");
    for (long i = 0; i < nconns; i++)
        conns[i].fd = -1;
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1: %s", strerror(errno));

    int status = cfg.mode == MODE_RATE ? run_rate() : run_places();
    if (session)
        SSL_SESSION_free(session);
    SSL_CTX_free(ctx);
    free(conns);
    free(latencies);
    free(cfg.expect);
    return status;
}
