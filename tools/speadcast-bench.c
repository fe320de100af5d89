/* speadcast-bench: how fast can speadcast-send stream into speadcast-recv?
 *
 * A trial runs the receiver (on a thread of this process, or in a child process), sends
 * it N heaps at a given rate with speadcast-send's code, and counts what arrived. A
 * rate is sustained when every heap of every trial at that rate arrived complete.
 *
 * Search mode (default), as spead2_bench: one trial at the unlimited rate gives the
 * sender's top rate R; if the receiver kept up, R is the answer; else a binary search
 * over (0, R) narrows the highest sustained rate to within --precision.
 * Sweep mode (--sweep): one measurement per (packet size, heap size) pair, printed as a
 * table and optionally drawn with --plot FILE.svg: the goodput the receiver got at the
 * unlimited rate, or with --search the highest sustained rate.
 *
 * Every trial is bounded: its heap count follows --trial-time, the receiver is given up
 * a short grace time after the sender finished, and the whole run stops at --max-time.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "speadcast/speadcast.h"

#define PROG "speadcast-bench"
#define MIN_TRIAL_HEAPS 4
#define MAX_TRIAL_HEAPS 100000
#define READY_TIMEOUT 10.0

enum transport { T_UDP, T_TCP, T_INPROC };
enum receiver_mode { R_THREAD, R_PROCESS };
static const char *const transports[] = {"udp", "tcp", "inproc", NULL};
static const char *const receivers[] = {"thread", "process", NULL};

struct bench_opts {
    int transport, receiver;
    const char *host;
    uint64_t heap_size, packet, items, max_heaps, burst, buffer;
    double burst_rate_ratio;
    int rate_method;
    uint64_t heaps;        /* per trial; 0 = from trial_time */
    double trial_time, precision, max_time, rate, guess;
    uint64_t trials;
    bool verify, sweep, search, json, quiet;
    struct spct_u64_list packets, heap_sizes;
    const char *plot;
};

struct trial {
    double rate;           /* asked, Gb/s (0 = unlimited) */
    uint64_t heaps;        /* data heaps sent */
    double send_gbps;      /* achieved by the sender */
    double recv_gbps;      /* payload of complete heaps over the receiver's time */
    uint64_t complete, incomplete, corrupt, stops;
    bool ok;
};

struct bench {
    const struct bench_opts *o;
    FILE *out, *err;
    double start;
    unsigned counter;      /* makes inproc queue names unique */
    bool out_of_time;
};

/* ------------------------------------------------------------ receiver side */

struct recv_thread {
    struct spct_recv_opts ro;
    struct spct_recv_result rr;
    FILE *err;
    atomic_int cancel;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool ready, done;
    int status;
    char addr[300];
};

static void on_ready(void *user, const struct sockaddr_storage *addrs, size_t n)
{
    struct recv_thread *rt = user;
    pthread_mutex_lock(&rt->lock);
    if (n > 0)
        spct_format_sockaddr((const struct sockaddr *)&addrs[0], rt->addr, sizeof rt->addr);
    rt->ready = true;
    pthread_cond_broadcast(&rt->cond);
    pthread_mutex_unlock(&rt->lock);
}

static FILE *null_out(void)
{
    return fopen("/dev/null", "w");
}

static void *recv_thread_main(void *arg)
{
    struct recv_thread *rt = arg;
    FILE *devnull = null_out();
    rt->status = spct_recv_run(&rt->ro, &rt->rr, devnull ? devnull : rt->err, rt->err);
    if (devnull)
        fclose(devnull);
    pthread_mutex_lock(&rt->lock);
    rt->ready = true; /* also when it failed before listening */
    rt->done = true;
    pthread_cond_broadcast(&rt->cond);
    pthread_mutex_unlock(&rt->lock);
    return NULL;
}

/* Waits until pred(rt) or the deadline (CLOCK_MONOTONIC seconds). */
static bool wait_for(struct recv_thread *rt, bool *flag, double deadline)
{
    pthread_mutex_lock(&rt->lock);
    while (!*flag) {
        double left = deadline - spct_now();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double t = ts.tv_sec + ts.tv_nsec * 1e-9 + (left < 0.05 ? left : 0.05);
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
        pthread_cond_timedwait(&rt->cond, &rt->lock, &ts);
    }
    bool r = *flag;
    pthread_mutex_unlock(&rt->lock);
    return r;
}

/* ------------------------------------------------------------ one trial */

/* The receiver's source: --host with port 0 (a free port). */
static void source_text(const struct bench *b, char *buf, size_t len)
{
    if (strchr(b->o->host, ':'))
        snprintf(buf, len, "[%s]:0", b->o->host);
    else
        snprintf(buf, len, "%s:0", b->o->host);
}

static void fill_recv_opts(const struct bench *b, struct spct_recv_opts *ro, const char **src,
                           uint64_t packet, uint64_t heap_size)
{
    const struct bench_opts *o = b->o;
    spct_recv_defaults(ro);
    ro->tcp = o->transport == T_TCP;
    ro->inproc = o->transport == T_INPROC;
    ro->verify = o->verify;
    ro->quiet = true;
    ro->packet = packet > 9200 ? packet : 9200;
    if (ro->tcp)
        ro->packet = packet > 65536 ? packet : 65536;
    ro->given_packet = true;
    ro->max_heap_size = heap_size + 4 * 1048576 > ro->max_heap_size ? heap_size + 4 * 1048576
                                                                     : ro->max_heap_size;
    if (o->buffer) {
        ro->buffer = o->buffer;
        ro->given_buffer = true;
    }
    ro->sources = src;
    ro->n_sources = 1;
    ro->stops = 1;
}

static void fill_send_opts(const struct bench *b, struct spct_send_opts *so, const char **dest,
                           uint64_t packet, uint64_t heap_size, double rate, uint64_t heaps)
{
    const struct bench_opts *o = b->o;
    spct_send_defaults(so);
    so->heap_size = heap_size;
    so->items = o->items;
    so->heaps = (int64_t)heaps;
    so->verify = o->verify;
    so->tcp = o->transport == T_TCP;
    so->inproc = o->transport == T_INPROC;
    so->packet = packet;
    so->burst = o->burst;
    so->burst_rate_ratio = o->burst_rate_ratio;
    so->max_heaps = o->max_heaps;
    so->rate_method = o->rate_method;
    so->rate = rate;
    so->quiet = true;
    so->no_progress = true;
    so->dest = dest;
    so->n_dest = 1;
}

/* The grace the receiver gets after the sender finished: enough for the packets still in
 * socket buffers, short enough that a lost stop heap does not stall the run. */
static double grace(const struct trial *t, uint64_t heap_size)
{
    double g = 0.5;
    if (t->send_gbps > 0)
        g += 2.0 * heap_size * 8e-9 / t->send_gbps;
    return g < 5.0 ? g : 5.0;
}

static void finish_trial(struct trial *t, const struct spct_recv_result *rr, int recv_status)
{
    t->recv_gbps = rr->seconds > 0 ? rr->bytes * 8e-9 / rr->seconds : 0.0;
    t->complete = rr->complete;
    t->incomplete = rr->incomplete;
    t->corrupt = rr->corrupt;
    t->stops = rr->stops;
    t->ok = recv_status == SPCT_EXIT_OK && rr->complete == t->heaps && rr->incomplete == 0 &&
            rr->corrupt == 0 && rr->bad_packets == 0;
}

static int sender_part(struct bench *b, struct trial *t, const char *addr, uint64_t packet,
                       uint64_t heap_size)
{
    const char *dest[1] = {addr};
    struct spct_send_opts so;
    fill_send_opts(b, &so, dest, packet, heap_size, t->rate, t->heaps);
    struct spct_send_result sr;
    FILE *devnull = null_out();
    int rc = spct_send_run(&so, &sr, devnull ? devnull : b->err, b->err);
    if (devnull)
        fclose(devnull);
    t->send_gbps = sr.seconds > 0 ? sr.bytes * 8e-9 / sr.seconds : 0.0;
    return rc;
}

static int trial_thread(struct bench *b, struct trial *t, uint64_t packet, uint64_t heap_size)
{
    char queue[64], host_src[300];
    snprintf(queue, sizeof queue, "speadcast-bench-%ld-%u", (long)getpid(), b->counter++);
    source_text(b, host_src, sizeof host_src);
    const char *src[1] = {b->o->transport == T_INPROC ? queue : host_src};
    struct recv_thread *rt = calloc(1, sizeof *rt);
    if (!rt)
        return -ENOMEM;
    fill_recv_opts(b, &rt->ro, src, packet, heap_size);
    rt->ro.ready = on_ready;
    rt->ro.ready_user = rt;
    rt->ro.cancel = &rt->cancel;
    rt->err = b->err;
    pthread_mutex_init(&rt->lock, NULL);
    pthread_cond_init(&rt->cond, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, recv_thread_main, rt) != 0) {
        free(rt);
        return -EAGAIN;
    }
    int rc = 0;
    if (!wait_for(rt, &rt->ready, spct_now() + READY_TIMEOUT) || rt->done) {
        fprintf(b->err, PROG ": the receiver did not start\n");
        rc = -EIO;
    } else {
        const char *addr = b->o->transport == T_INPROC ? queue : rt->addr;
        if (sender_part(b, t, addr, packet, heap_size) != SPCT_EXIT_OK)
            rc = -EIO;
    }
    if (!wait_for(rt, &rt->done, spct_now() + grace(t, heap_size))) {
        atomic_store(&rt->cancel, 1);
        wait_for(rt, &rt->done, spct_now() + 10.0);
    }
    pthread_join(th, NULL);
    finish_trial(t, &rt->rr, rt->status);
    pthread_mutex_destroy(&rt->lock);
    pthread_cond_destroy(&rt->cond);
    free(rt);
    return rc;
}

/* What the child process sends back through the pipe. */
struct child_msg {
    int kind; /* 1 ready (addr), 2 result */
    char addr[300];
    struct spct_recv_result rr;
    int status;
};

static void child_ready(void *user, const struct sockaddr_storage *addrs, size_t n)
{
    int fd = *(int *)user;
    struct child_msg m;
    memset(&m, 0, sizeof m);
    m.kind = 1;
    if (n > 0)
        spct_format_sockaddr((const struct sockaddr *)&addrs[0], m.addr, sizeof m.addr);
    if (write(fd, &m, sizeof m) < 0) {
        /* the parent is gone; the receiver times out on its own */
    }
}

static bool read_msg(int fd, struct child_msg *m, double deadline)
{
    size_t got = 0;
    while (got < sizeof *m) {
        double left = deadline - spct_now();
        if (left <= 0)
            return false;
        struct pollfd p = {fd, POLLIN, 0};
        int n = poll(&p, 1, (int)(left * 1000) + 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            continue;
        ssize_t r = read(fd, (char *)m + got, sizeof *m - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static int trial_process(struct bench *b, struct trial *t, uint64_t packet, uint64_t heap_size)
{
    int pfd[2];
    if (pipe(pfd) < 0)
        return -errno;
    char host_src[300];
    source_text(b, host_src, sizeof host_src);
    const char *src[1] = {host_src};
    fflush(b->out);
    fflush(b->err);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pfd[0]);
        close(pfd[1]);
        return -e;
    }
    if (pid == 0) {
        close(pfd[0]);
        spct_install_signals();
        struct spct_recv_opts ro;
        fill_recv_opts(b, &ro, src, packet, heap_size);
        ro.timeout = b->o->max_time + 60.0; /* the parent normally ends it sooner */
        ro.ready = child_ready;
        ro.ready_user = &pfd[1];
        struct child_msg m;
        memset(&m, 0, sizeof m);
        FILE *devnull = null_out();
        m.status = spct_recv_run(&ro, &m.rr, devnull ? devnull : stderr, stderr);
        m.kind = 2;
        if (write(pfd[1], &m, sizeof m) < 0)
            _exit(1);
        _exit(0);
    }
    close(pfd[1]);
    int rc = 0;
    struct child_msg m;
    if (!read_msg(pfd[0], &m, spct_now() + READY_TIMEOUT) || m.kind != 1) {
        fprintf(b->err, PROG ": the receiver process did not start\n");
        rc = -EIO;
    } else if (sender_part(b, t, m.addr, packet, heap_size) != SPCT_EXIT_OK) {
        rc = -EIO;
    }
    memset(&m, 0, sizeof m);
    if (!read_msg(pfd[0], &m, spct_now() + grace(t, heap_size))) {
        kill(pid, SIGTERM);
        if (!read_msg(pfd[0], &m, spct_now() + 10.0)) {
            kill(pid, SIGKILL);
            memset(&m, 0, sizeof m);
            m.status = SPCT_EXIT_FAIL;
        }
    }
    close(pfd[0]);
    waitpid(pid, NULL, 0);
    finish_trial(t, &m.rr, m.status);
    return rc;
}

static uint64_t heaps_for(const struct bench *b, double rate, uint64_t heap_size)
{
    if (b->o->heaps)
        return b->o->heaps;
    /* Unlimited: assume 10 Gb/s; the trial then lasts about trial_time or less. */
    double r = rate > 0 ? rate : 10.0;
    double n = b->o->trial_time * r * 1e9 / 8 / (double)(heap_size ? heap_size : 1);
    if (n < MIN_TRIAL_HEAPS)
        n = MIN_TRIAL_HEAPS;
    if (n > MAX_TRIAL_HEAPS)
        n = MAX_TRIAL_HEAPS;
    return (uint64_t)n;
}

/* Runs --trials trials at one rate; t gets the last (or the first failing) one. */
static int measure(struct bench *b, double rate, uint64_t packet, uint64_t heap_size,
                   struct trial *t)
{
    for (uint64_t i = 0; i < b->o->trials; i++) {
        memset(t, 0, sizeof *t);
        t->rate = rate;
        t->heaps = heaps_for(b, rate, heap_size);
        int rc = b->o->receiver == R_PROCESS ? trial_process(b, t, packet, heap_size)
                                             : trial_thread(b, t, packet, heap_size);
        if (rc < 0)
            return rc;
        if (!b->o->quiet && !b->o->json) {
            char asked[32];
            if (rate > 0)
                snprintf(asked, sizeof asked, "%8.3f Gb/s", rate);
            else
                snprintf(asked, sizeof asked, "%13s", "unlimited");
            fprintf(b->out, "  rate %s: sent %7.3f Gb/s, %" PRIu64 "/%" PRIu64
                    " heaps complete, received %7.3f Gb/s: %s\n", asked, t->send_gbps,
                    t->complete, t->heaps, t->recv_gbps, t->ok ? "ok" : "LOSS");
            fflush(b->out);
        }
        if (!t->ok || spct_interrupted)
            break;
    }
    if (spct_now() - b->start > b->o->max_time)
        b->out_of_time = true;
    return 0;
}

/* The binary search; *best gets the highest sustained rate (0 if none), *top the
 * sender's unlimited rate. */
static int search(struct bench *b, uint64_t packet, uint64_t heap_size, double *best,
                  double *top)
{
    struct trial t;
    int rc = measure(b, 0.0, packet, heap_size, &t);
    if (rc < 0)
        return rc;
    *top = t.send_gbps;
    if (t.ok) {
        *best = t.send_gbps;
        return 0;
    }
    double lo = 0.0, hi = b->o->guess > 0 && b->o->guess < t.send_gbps ? b->o->guess : t.send_gbps;
    if (hi < t.send_gbps) {
        /* A guess below the top rate: check it before searching under it. */
        rc = measure(b, hi, packet, heap_size, &t);
        if (rc < 0)
            return rc;
        if (t.ok) {
            lo = hi;
            hi = *top;
        }
    }
    while (hi - lo > b->o->precision * hi && !b->out_of_time && !spct_interrupted) {
        double mid = 0.5 * (lo + hi);
        rc = measure(b, mid, packet, heap_size, &t);
        if (rc < 0)
            return rc;
        if (t.ok)
            lo = mid;
        else
            hi = mid;
    }
    *best = lo;
    return 0;
}

/* ------------------------------------------------------------ SVG chart */

static void human_size(uint64_t v, char *buf, size_t len)
{
    if (v >= 1048576 && v % 1048576 == 0)
        snprintf(buf, len, "%" PRIu64 " MiB", v / 1048576);
    else if (v >= 1024 && v % 1024 == 0)
        snprintf(buf, len, "%" PRIu64 " KiB", v / 1024);
    else
        snprintf(buf, len, "%" PRIu64 " B", v);
}

static double nice_ceiling(double v)
{
    if (v <= 0)
        return 1.0;
    double p = pow(10.0, floor(log10(v)));
    const double steps[] = {1, 2, 2.5, 5, 10};
    for (size_t i = 0; i < 5; i++)
        if (steps[i] * p >= v)
            return steps[i] * p;
    return 10 * p;
}

static void svg_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* Draws value[h * n_packets + p] against packet size (log scale), one line per heap size. */
static int write_svg(const char *path, const char *title, const char *ylabel,
                     const struct spct_u64_list *packets, const struct spct_u64_list *heaps,
                     const double *value)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    const double W = 800, H = 480, x0 = 80, x1 = 600, y0 = 50, y1 = 410;
    static const char *const colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                          "#9467bd", "#8c564b", "#e377c2", "#17becf"};
    double vmax = 0;
    for (size_t i = 0; i < packets->n * heaps->n; i++)
        if (value[i] > vmax)
            vmax = value[i];
    double ymax = nice_ceiling(vmax * 1.05);
    double lmin = log2((double)packets->v[0]), lmax = lmin;
    for (size_t i = 1; i < packets->n; i++) {
        double l = log2((double)packets->v[i]);
        lmin = l < lmin ? l : lmin;
        lmax = l > lmax ? l : lmax;
    }
    if (lmax - lmin < 1e-9) {
        lmin -= 1;
        lmax += 1;
    }
#define XPOS(p) (x0 + 20 + (log2((double)(p)) - lmin) / (lmax - lmin) * (x1 - x0 - 40))
#define YPOS(v) (y1 - (v) / ymax * (y1 - y0))
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, H, W, H);
    fprintf(f, "<text x=\"%.0f\" y=\"28\" font-size=\"16\" text-anchor=\"middle\">", (x0 + x1) / 2);
    svg_text(f, title);
    fputs("</text>\n", f);
    for (int i = 0; i <= 5; i++) {
        double v = ymax * i / 5, y = YPOS(v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#dddddd\"/>\n"
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                x0, y, x1, y, x0 - 8, y + 4, v);
    }
    for (size_t i = 0; i < packets->n; i++) {
        double x = XPOS(packets->v[i]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eeeeee\"/>\n"
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%" PRIu64 "</text>\n",
                x, y0, x, y1, x, y1 + 18, packets->v[i]);
    }
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
               "stroke=\"black\"/>\n", x0, y0, x1 - x0, y1 - y0);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">packet size (bytes, log scale)"
               "</text>\n", (x0 + x1) / 2, y1 + 42);
    fprintf(f, "<text x=\"20\" y=\"%.0f\" text-anchor=\"middle\" "
               "transform=\"rotate(-90 20 %.0f)\">", (y0 + y1) / 2, (y0 + y1) / 2);
    svg_text(f, ylabel);
    fputs("</text>\n", f);
    for (size_t h = 0; h < heaps->n; h++) {
        const char *c = colours[h % (sizeof colours / sizeof colours[0])];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", c);
        for (size_t p = 0; p < packets->n; p++)
            fprintf(f, "%s%.1f,%.1f", p ? " " : "", XPOS(packets->v[p]),
                    YPOS(value[h * packets->n + p]));
        fputs("\"/>\n", f);
        for (size_t p = 0; p < packets->n; p++)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n",
                    XPOS(packets->v[p]), YPOS(value[h * packets->n + p]), c);
        char label[64];
        human_size(heaps->v[h], label, sizeof label);
        double ly = y0 + 10 + 22.0 * (double)h;
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"%s\" "
                   "stroke-width=\"2\"/>\n<text x=\"%.0f\" y=\"%.1f\">heap ",
                x1 + 20, ly, x1 + 50, ly, c, x1 + 58, ly + 4);
        svg_text(f, label);
        fputs("</text>\n", f);
    }
#undef XPOS
#undef YPOS
    fputs("</svg>\n", f);
    return fclose(f) == 0 ? 0 : -EIO;
}

/* ------------------------------------------------------------ modes */

static const char *transport_name(const struct bench_opts *o)
{
    return transports[o->transport];
}

static int run_search(struct bench *b)
{
    const struct bench_opts *o = b->o;
    if (!o->json && !o->quiet)
        fprintf(b->out, "Searching the highest rate %s-%s into the receiver (%s, %s): "
                "heap %" PRIu64 " bytes, packet %" PRIu64 " bytes\n", "speadcast-send",
                transport_name(o), receivers[o->receiver], "speadcast-recv", o->heap_size,
                o->packet);
    double best = 0, top = 0;
    int rc;
    if (o->rate > 0) {
        struct trial t;
        rc = measure(b, o->rate, o->packet, o->heap_size, &t);
        if (rc < 0)
            return rc;
        best = t.ok ? t.send_gbps : 0;
        top = t.send_gbps;
    } else {
        rc = search(b, o->packet, o->heap_size, &best, &top);
        if (rc < 0)
            return rc;
    }
    if (o->json) {
        fprintf(b->out, "{\"mode\": \"search\", \"transport\": \"%s\", \"receiver\": \"%s\", "
                "\"heap_size\": %" PRIu64 ", \"packet\": %" PRIu64 ", \"best_gbps\": ",
                transport_name(o), receivers[o->receiver], o->heap_size, o->packet);
        spct_json_double(b->out, best);
        fputs(", \"top_send_gbps\": ", b->out);
        spct_json_double(b->out, top);
        fprintf(b->out, ", \"out_of_time\": %s}\n", b->out_of_time ? "true" : "false");
    } else if (o->rate > 0) {
        fprintf(b->out, "%s at %g Gb/s\n", best > 0 ? "Sustained" : "Not sustained", o->rate);
    } else if (best > 0) {
        fprintf(b->out,
                "Highest sustained rate: %.3f Gb/s (the sender alone reached %.3f Gb/s)%s\n", best,
                top, b->out_of_time ? " [--max-time reached]" : "");
    } else {
        fprintf(b->out, "No rate tested was sustained (the sender alone reached %.3f Gb/s)%s\n",
                top, b->out_of_time ? " [--max-time reached]" : "");
    }
    return 0;
}

static int run_sweep(struct bench *b)
{
    const struct bench_opts *o = b->o;
    const struct spct_u64_list *P = &o->packets, *Hs = &o->heap_sizes;
    size_t n = P->n * Hs->n;
    double *value = calloc(n ? n : 1, sizeof *value);
    struct trial *rows = calloc(n ? n : 1, sizeof *rows);
    double *best = calloc(n ? n : 1, sizeof *best);
    if (!value || !rows || !best) {
        free(value);
        free(rows);
        free(best);
        return -ENOMEM;
    }
    if (!o->json)
        fprintf(b->out, "Sweep over %s, receiver %s%s\n", transport_name(o),
                o->receiver == R_PROCESS ? "in a child process" : "on a thread",
                o->search ? ", searching the highest sustained rate" : "");
    int rc = 0;
    size_t done = 0;
    for (size_t h = 0; h < Hs->n && rc == 0; h++)
        for (size_t p = 0; p < P->n && rc == 0; p++) {
            if (b->out_of_time || spct_interrupted)
                break;
            size_t i = h * P->n + p;
            if (!o->quiet && !o->json)
                fprintf(b->out, "packet %" PRIu64 ", heap size %" PRIu64 ":\n", P->v[p], Hs->v[h]);
            rc = measure(b, 0.0, P->v[p], Hs->v[h], &rows[i]);
            if (rc < 0)
                break;
            if (o->search) {
                double top;
                rc = search(b, P->v[p], Hs->v[h], &best[i], &top);
                if (rc < 0)
                    break;
            }
            value[i] = o->search ? best[i] : rows[i].recv_gbps;
            done++;
        }
    if (o->json) {
        fprintf(b->out, "{\"mode\": \"sweep\", \"transport\": \"%s\", \"receiver\": \"%s\", "
                "\"rows\": [", transport_name(o), receivers[o->receiver]);
        for (size_t i = 0; i < done; i++) {
            const struct trial *t = &rows[i];
            fprintf(b->out, "%s{\"packet\": %" PRIu64 ", \"heap_size\": %" PRIu64
                    ", \"heaps\": %" PRIu64 ", \"send_gbps\": ", i ? ", " : "", P->v[i % P->n],
                    Hs->v[i / P->n], t->heaps);
            spct_json_double(b->out, t->send_gbps);
            fputs(", \"recv_gbps\": ", b->out);
            spct_json_double(b->out, t->recv_gbps);
            fprintf(b->out, ", \"complete\": %" PRIu64, t->complete);
            if (o->search) {
                fputs(", \"sustained_gbps\": ", b->out);
                spct_json_double(b->out, best[i]);
            }
            fputc('}', b->out);
        }
        fprintf(b->out, "], \"complete\": %s}\n", done == n ? "true" : "false");
    } else {
        fprintf(b->out, "  packet   heap size   heaps   sent Gb/s   recv Gb/s   complete%s\n",
                o->search ? "   sustained Gb/s" : "");
        for (size_t i = 0; i < done; i++) {
            const struct trial *t = &rows[i];
            fprintf(b->out, "  %6" PRIu64 "  %10" PRIu64 "  %6" PRIu64 "  %10.3f  %10.3f  %8.1f%%",
                    P->v[i % P->n], Hs->v[i / P->n], t->heaps, t->send_gbps, t->recv_gbps,
                    t->heaps ? 100.0 * (double)t->complete / (double)t->heaps : 0.0);
            if (o->search)
                fprintf(b->out, "  %15.3f", best[i]);
            fputc('\n', b->out);
        }
        if (done < n)
            fprintf(b->out, "(stopped after %zu of %zu measurements: %s)\n", done, n,
                    spct_interrupted ? "interrupted" : "--max-time reached");
    }
    if (rc == 0 && o->plot) {
        char title[200];
        snprintf(title, sizeof title, "speadcast-send into speadcast-recv over %s (%s receiver)",
                 transport_name(o), receivers[o->receiver]);
        int w = write_svg(o->plot, title,
                          o->search ? "highest sustained rate (Gb/s)" : "received goodput (Gb/s)",
                          P, Hs, value);
        if (w < 0) {
            fprintf(b->err, PROG ": --plot %s: %s\n", o->plot, strerror(-w));
            rc = w;
        } else if (!o->json) {
            fprintf(b->out, "Chart written to %s\n", o->plot);
        }
    }
    fflush(b->out);
    free(value);
    free(rows);
    free(best);
    return rc;
}

int spct_bench_main(int argc, char **argv, FILE *out, FILE *err)
{
    struct bench_opts o;
    memset(&o, 0, sizeof o);
    o.transport = T_UDP;
    o.receiver = R_THREAD;
    o.host = "127.0.0.1";
    o.heap_size = 1048576;
    o.packet = 1472;
    o.items = 1;
    o.max_heaps = 4;
    o.burst = 65536;
    o.burst_rate_ratio = 1.05;
    o.rate_method = SPC_RATE_METHOD_AUTO;
    o.trial_time = 0.2;
    o.precision = 0.05;
    o.max_time = 30.0;
    o.trials = 1;
    static const uint64_t def_packets[] = {1472, 4096, 8972};
    static const uint64_t def_heaps[] = {65536, 1048576, 4194304};
    o.packets.v = malloc(sizeof def_packets);
    o.heap_sizes.v = malloc(sizeof def_heaps);
    if (!o.packets.v || !o.heap_sizes.v) {
        free(o.packets.v);
        free(o.heap_sizes.v);
        fprintf(err, PROG ": out of memory\n");
        return SPCT_EXIT_FAIL;
    }
    memcpy(o.packets.v, def_packets, sizeof def_packets);
    o.packets.n = 3;
    memcpy(o.heap_sizes.v, def_heaps, sizeof def_heaps);
    o.heap_sizes.n = 3;
    const struct spct_opt opts[] = {
        {"transport", SPCT_OPT_CHOICE, &o.transport, NULL, "NAME", "udp, tcp or inproc", false,
         false, 0, 0, transports},
        {"receiver", SPCT_OPT_CHOICE, &o.receiver, NULL, "WHERE",
         "run the receiver on a thread or in a child process", false, false, 0, 0, receivers},
        {"host", SPCT_OPT_STRING, &o.host, NULL, "ADDRESS",
         "address the receiver listens on (loopback)", false, false, 0, 0, NULL},
        {"heap-size", SPCT_OPT_UINT, &o.heap_size, NULL, "BYTES", "payload size of each heap",
         true, true, 4, 1073741824.0, NULL},
        {"packet", SPCT_OPT_UINT, &o.packet, NULL, "BYTES", "maximum packet size", true, true,
         SPC_MIN_PACKET_SIZE, 65507, NULL},
        {"items", SPCT_OPT_UINT, &o.items, NULL, "N", "items per heap", true, true, 1, 4096,
         NULL},
        {"max-heaps", SPCT_OPT_UINT, &o.max_heaps, NULL, "N", "heaps in flight", true, true, 1,
         65536, NULL},
        {"burst", SPCT_OPT_UINT, &o.burst, NULL, "BYTES", "rate limiter burst size", true, false,
         1, 0, NULL},
        {"buffer", SPCT_OPT_UINT, &o.buffer, NULL, "BYTES",
         "the receiver's socket buffer (0 = speadcast-recv's default, 8 MiB for UDP)", true, true,
         0, 2147483647.0, NULL},
        {"burst-rate-ratio", SPCT_OPT_DOUBLE, &o.burst_rate_ratio, NULL, "RATIO",
         "catch-up rate relative to the rate", true, false, 1, 0, NULL},
        {"rate-method", SPCT_OPT_CHOICE, &o.rate_method, NULL, "METHOD", "sw, hw or auto", false,
         false, 0, 0, spc_rate_method_names()},
        {"heaps", SPCT_OPT_UINT, &o.heaps, NULL, "N",
         "heaps per trial (0 = enough for --trial-time)", true, true, 0, MAX_TRIAL_HEAPS, NULL},
        {"trial-time", SPCT_OPT_DOUBLE, &o.trial_time, NULL, "SECONDS",
         "rough length of one trial", true, true, 0.01, 60, NULL},
        {"trials", SPCT_OPT_UINT, &o.trials, NULL, "N",
         "trials per rate; a rate is sustained when all are lossless", true, true, 1, 100, NULL},
        {"precision", SPCT_OPT_DOUBLE, &o.precision, NULL, "FRACTION",
         "stop searching when the interval is this fraction of its top", true, true, 0.001, 0.5,
         NULL},
        {"max-time", SPCT_OPT_DOUBLE, &o.max_time, NULL, "SECONDS",
         "stop starting trials after this long", true, true, 0.1, 86400, NULL},
        {"guess", SPCT_OPT_DOUBLE, &o.guess, NULL, "GBPS",
         "first rate to try below the sender's top rate (0 = search from the top)", true, false,
         0, 0, NULL},
        {"rate", SPCT_OPT_DOUBLE, &o.rate, NULL, "GBPS",
         "only test this rate (0 = search)", true, false, 0, 0, NULL},
        {"verify", SPCT_OPT_FLAG, &o.verify, NULL, NULL, "send and check the --verify pattern",
         false, false, 0, 0, NULL},
        {"sweep", SPCT_OPT_FLAG, &o.sweep, NULL, NULL,
         "measure every --packets x --heap-sizes pair and print a table", false, false, 0, 0,
         NULL},
        {"packets", SPCT_OPT_LIST, &o.packets, NULL, "LIST", "sweep: packet sizes", true, true,
         SPC_MIN_PACKET_SIZE, 65507, NULL},
        {"heap-sizes", SPCT_OPT_LIST, &o.heap_sizes, NULL, "LIST", "sweep: heap sizes", true,
         true, 4, 1073741824.0, NULL},
        {"search", SPCT_OPT_FLAG, &o.search, NULL, NULL,
         "sweep: binary-search each pair's highest sustained rate (slower)", false, false, 0, 0,
         NULL},
        {"plot", SPCT_OPT_STRING, &o.plot, NULL, "FILE.svg",
         "sweep: draw the results as an SVG chart", false, false, 0, 0, NULL},
        {"json", SPCT_OPT_FLAG, &o.json, NULL, NULL, "print the results as one JSON object", false,
         false, 0, 0, NULL},
        {"quiet", SPCT_OPT_FLAG, &o.quiet, NULL, NULL, "do not print each trial", false, false, 0,
         0, NULL},
    };
    const size_t n_opts = sizeof opts / sizeof opts[0];
    char **pos;
    size_t n_pos;
    int rc = spct_parse_options(PROG, "[options]   (search)\n       " PROG
                                " --sweep [--plot FILE.svg] [options]", opts, n_opts, argc, argv,
                                &pos, &n_pos, out, err);
    int status = SPCT_EXIT_OK;
    if (rc != 0) {
        status = rc == 1 ? SPCT_EXIT_OK : SPCT_EXIT_USAGE;
        goto done;
    }
    if (n_pos) {
        fprintf(err, PROG ": unexpected argument '%s' (the receiver listens on --host; see "
                     "--help)\n", pos[0]);
        status = SPCT_EXIT_USAGE;
    } else if (o.plot && !o.sweep) {
        fprintf(err, PROG ": --plot draws a sweep: add --sweep\n");
        status = SPCT_EXIT_USAGE;
    } else if (o.search && !o.sweep) {
        fprintf(err, PROG ": --search applies to --sweep (searching is the default otherwise)\n");
        status = SPCT_EXIT_USAGE;
    } else if (o.receiver == R_PROCESS && o.transport == T_INPROC) {
        fprintf(err, PROG ": inproc queues live in one process: use --receiver thread\n");
        status = SPCT_EXIT_USAGE;
    } else if (o.sweep && o.rate > 0) {
        fprintf(err, PROG ": --rate and --sweep do not go together\n");
        status = SPCT_EXIT_USAGE;
    }
    free(pos);
    if (status != SPCT_EXIT_OK)
        goto done;
    struct bench b = {&o, out, err, spct_now(), 0, false};
    rc = o.sweep ? run_sweep(&b) : run_search(&b);
    if (rc < 0) {
        fprintf(err, PROG ": benchmark failed: %s\n", strerror(-rc));
        status = SPCT_EXIT_FAIL;
    }
done:
    spct_free_lists(opts, n_opts);
    return status;
}
