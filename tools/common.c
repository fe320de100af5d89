/* Shared helpers of the command-line tools (see common.h). */
#include "common.h"
#include "editdist.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t spct_interrupted;

static void on_signal(int sig)
{
    (void)sig;
    spct_interrupted = 1;
}

void spct_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* ------------------------------------------------------------ numbers */

static int suffix_shift(const char *end, unsigned *shift)
{
    if (*end == '\0') {
        *shift = 0;
        return 0;
    }
    if (end[1] != '\0')
        return -1;
    switch (*end) {
    case 'k': case 'K': *shift = 10; return 0;
    case 'm': case 'M': *shift = 20; return 0;
    case 'g': case 'G': *shift = 30; return 0;
    default: return -1;
    }
}

int spct_parse_u64(const char *s, uint64_t *out, const char **why)
{
    if (!s || !*s) {
        *why = "is empty";
        return -1;
    }
    if (*s == '-') {
        *why = "must not be negative";
        return -1;
    }
    if (!isdigit((unsigned char)*s)) {
        *why = "is not a number";
        return -1;
    }
    char *end;
    errno = 0;
    int base = (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? 16 : 10;
    unsigned long long v = strtoull(s, &end, base);
    unsigned shift;
    if (end == s || suffix_shift(end, &shift) < 0) {
        *why = "is not a whole number";
        return -1;
    }
    if (errno == ERANGE || (shift && v > (UINT64_MAX >> shift))) {
        *why = "is too large";
        return -1;
    }
    *out = (uint64_t)v << shift;
    return 0;
}

int spct_parse_i64(const char *s, int64_t *out, const char **why)
{
    bool neg = s && *s == '-';
    uint64_t mag;
    if (spct_parse_u64(neg ? s + 1 : s, &mag, why) < 0)
        return -1;
    if (mag > (uint64_t)INT64_MAX + (neg ? 1u : 0u)) {
        *why = "is out of range";
        return -1;
    }
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

int spct_parse_double(const char *s, double *out, const char **why)
{
    if (!s || !*s) {
        *why = "is empty";
        return -1;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0') {
        *why = "is not a number";
        return -1;
    }
    if (!isfinite(v) || errno == ERANGE) {
        *why = "is not a finite number";
        return -1;
    }
    *out = v;
    return 0;
}

/* ------------------------------------------------------------ options */

static const char *closest_option(const struct spct_opt *opts, size_t n, const char *name)
{
    const char *best = NULL;
    size_t best_d = 3; /* suggest only near misses */
    for (size_t i = 0; i < n; i++) {
        size_t d = spci_edit_distance(name, opts[i].name);
        if (strncmp(opts[i].name, name, strlen(name)) == 0 && strlen(name) >= 3)
            d = 1;
        if (d < best_d) {
            best_d = d;
            best = opts[i].name;
        }
    }
    return best;
}

static void format_number(char *buf, size_t len, double v)
{
    snprintf(buf, len, "%.15g", v);
}

/* Checks a number against the option's bounds; writes the complaint to err. */
static int check_bounds(const char *prog, const struct spct_opt *o, double v, const char *text,
                        FILE *err)
{
    char lim[64];
    if (o->has_min && v < o->min) {
        format_number(lim, sizeof lim, o->min);
        fprintf(err, "%s: --%s: %s is below the minimum %s\n", prog, o->name, text, lim);
        return -1;
    }
    if (o->has_max && v > o->max) {
        format_number(lim, sizeof lim, o->max);
        fprintf(err, "%s: --%s: %s is above the maximum %s\n", prog, o->name, text, lim);
        return -1;
    }
    return 0;
}

static int parse_list(const char *prog, const struct spct_opt *o, const char *value, FILE *err)
{
    struct spct_u64_list *l = o->dest;
    size_t cap = 1;
    for (const char *p = value; *p; p++)
        cap += *p == ',';
    uint64_t *v = malloc(cap * sizeof *v);
    if (!v) {
        fprintf(err, "%s: out of memory\n", prog);
        return -1;
    }
    size_t n = 0;
    const char *p = value;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[64];
        const char *why;
        if (len == 0 || len >= sizeof item) {
            fprintf(err, "%s: --%s: '%s' is not a comma-separated list of numbers\n", prog,
                    o->name, value);
            free(v);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (spct_parse_u64(item, &v[n], &why) < 0) {
            fprintf(err, "%s: --%s: '%s' %s\n", prog, o->name, item, why);
            free(v);
            return -1;
        }
        if (check_bounds(prog, o, (double)v[n], item, err) < 0) {
            free(v);
            return -1;
        }
        n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    free(l->v);
    l->v = v;
    l->n = n;
    return 0;
}

static int set_value(const char *prog, const struct spct_opt *o, const char *value, FILE *err)
{
    const char *why = NULL;
    switch (o->type) {
    case SPCT_OPT_FLAG:
        *(bool *)o->dest = true;
        return 0;
    case SPCT_OPT_UINT: {
        uint64_t v;
        if (spct_parse_u64(value, &v, &why) < 0)
            break;
        if (check_bounds(prog, o, (double)v, value, err) < 0)
            return -1;
        *(uint64_t *)o->dest = v;
        return 0;
    }
    case SPCT_OPT_INT: {
        int64_t v;
        if (spct_parse_i64(value, &v, &why) < 0)
            break;
        if (check_bounds(prog, o, (double)v, value, err) < 0)
            return -1;
        *(int64_t *)o->dest = v;
        return 0;
    }
    case SPCT_OPT_DOUBLE: {
        double v;
        if (spct_parse_double(value, &v, &why) < 0)
            break;
        if (check_bounds(prog, o, v, value, err) < 0)
            return -1;
        *(double *)o->dest = v;
        return 0;
    }
    case SPCT_OPT_STRING:
        if (!*value) {
            why = "must not be empty";
            break;
        }
        *(const char **)o->dest = value;
        return 0;
    case SPCT_OPT_CHOICE:
        for (int i = 0; o->choices[i]; i++)
            if (strcasecmp(value, o->choices[i]) == 0) {
                *(int *)o->dest = i;
                return 0;
            }
        fprintf(err, "%s: --%s: '%s' is not one of", prog, o->name, value);
        for (int i = 0; o->choices[i]; i++)
            fprintf(err, "%s %s", i ? "," : "", o->choices[i]);
        fputc('\n', err);
        return -1;
    case SPCT_OPT_LIST:
        return parse_list(prog, o, value, err);
    }
    fprintf(err, "%s: --%s: '%s' %s\n", prog, o->name, value, why ? why : "is invalid");
    return -1;
}

/* The default shown in --help, taken from dest before anything is parsed. */
static void default_text(const struct spct_opt *o, char *buf, size_t len)
{
    buf[0] = '\0';
    switch (o->type) {
    case SPCT_OPT_FLAG:
        break;
    case SPCT_OPT_UINT:
        snprintf(buf, len, "%" PRIu64, *(const uint64_t *)o->dest);
        break;
    case SPCT_OPT_INT:
        snprintf(buf, len, "%" PRId64, *(const int64_t *)o->dest);
        break;
    case SPCT_OPT_DOUBLE:
        snprintf(buf, len, "%g", *(const double *)o->dest);
        break;
    case SPCT_OPT_STRING: {
        const char *s = *(const char *const *)o->dest;
        if (s)
            snprintf(buf, len, "%s", s);
        break;
    }
    case SPCT_OPT_CHOICE:
        snprintf(buf, len, "%s", o->choices[*(const int *)o->dest]);
        break;
    case SPCT_OPT_LIST: {
        const struct spct_u64_list *l = o->dest;
        size_t off = 0;
        for (size_t i = 0; i < l->n && off + 1 < len; i++) {
            int w = snprintf(buf + off, len - off, "%s%" PRIu64, i ? "," : "", l->v[i]);
            if (w < 0)
                break;
            off += (size_t)w;
        }
        break;
    }
    }
}

static void usage(const char *prog, const char *synopsis, const struct spct_opt *opts, size_t n,
                  char (*defs)[64], FILE *out)
{
    fprintf(out, "Usage: %s %s\n\nOptions:\n", prog, synopsis);
    for (size_t i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].metavar ? " " : "",
                 opts[i].metavar ? opts[i].metavar : "");
        fprintf(out, "  %-26s %s", left, opts[i].help);
        if (defs[i][0] && !strstr(opts[i].help, "default"))
            fprintf(out, " (default %s)", defs[i]);
        fputc('\n', out);
    }
    fprintf(out, "  %-26s %s\n", "-h, --help", "show this help and exit");
}

int spct_parse_options(const char *prog, const char *synopsis, const struct spct_opt *opts,
                       size_t n_opts, int argc, char **argv, char ***pos, size_t *n_pos,
                       FILE *out, FILE *err)
{
    *pos = NULL;
    *n_pos = 0;
    char (*defs)[64] = calloc(n_opts ? n_opts : 1, sizeof *defs);
    char **p = calloc(argc > 0 ? (size_t)argc : 1, sizeof *p);
    if (!defs || !p) {
        free(defs);
        free(p);
        fprintf(err, "%s: out of memory\n", prog);
        return -1;
    }
    for (size_t i = 0; i < n_opts; i++)
        default_text(&opts[i], defs[i], sizeof defs[i]);
    size_t np = 0;
    bool only_pos = false;
    int rc = 0;
    for (int i = 1; i < argc && rc == 0; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            p[np++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(prog, synopsis, opts, n_opts, defs, out);
            rc = 1;
            break;
        }
        if (a[1] != '-') {
            fprintf(err, "%s: unknown option %s (options are written --name; see --help)\n",
                    prog, a);
            rc = -1;
            break;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const struct spct_opt *o = NULL;
        for (size_t k = 0; k < n_opts; k++)
            if (strlen(opts[k].name) == name_len && strncmp(opts[k].name, name, name_len) == 0)
                o = &opts[k];
        if (!o) {
            char bare[64];
            snprintf(bare, sizeof bare, "%.*s", (int)(name_len < 63 ? name_len : 63), name);
            const char *hint = closest_option(opts, n_opts, bare);
            fprintf(err, "%s: unknown option --%s", prog, bare);
            if (hint)
                fprintf(err, " (did you mean --%s?)", hint);
            fprintf(err, "; see --help\n");
            rc = -1;
            break;
        }
        const char *value;
        if (o->type == SPCT_OPT_FLAG) {
            if (eq) {
                fprintf(err, "%s: --%s takes no value\n", prog, o->name);
                rc = -1;
                break;
            }
            value = NULL;
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fprintf(err, "%s: --%s needs a value (%s)\n", prog, o->name,
                    o->metavar ? o->metavar : "VALUE");
            rc = -1;
            break;
        }
        if (set_value(prog, o, value, err) < 0) {
            rc = -1;
            break;
        }
        if (o->given)
            *o->given = true;
    }
    free(defs);
    if (rc != 0) {
        free(p);
        return rc;
    }
    *pos = p;
    *n_pos = np;
    return 0;
}

void spct_free_lists(const struct spct_opt *opts, size_t n_opts)
{
    for (size_t i = 0; i < n_opts; i++)
        if (opts[i].type == SPCT_OPT_LIST) {
            struct spct_u64_list *l = opts[i].dest;
            free(l->v);
            l->v = NULL;
            l->n = 0;
        }
}

/* ------------------------------------------------------------ endpoints */

int spct_parse_endpoint(const char *text, bool passive, struct spct_endpoint *ep, char *why,
                        size_t why_len)
{
    const char *host = "", *port_text;
    size_t host_len = 0;
    if (!text || !*text) {
        snprintf(why, why_len, "empty endpoint (expected host:port)");
        return -1;
    }
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':') {
            snprintf(why, why_len, "'%s' is not of the form [address]:port", text);
            return -1;
        }
        host = text + 1;
        host_len = (size_t)(close - host);
        port_text = close + 2;
        if (host_len == 0) {
            snprintf(why, why_len, "'%s' has an empty address", text);
            return -1;
        }
    } else {
        const char *colon = strrchr(text, ':');
        if (colon && memchr(text, ':', (size_t)(colon - text))) {
            snprintf(why, why_len, "'%s': write IPv6 addresses as [address]:port", text);
            return -1;
        }
        if (!colon) {
            if (!passive) {
                snprintf(why, why_len, "'%s' is not of the form host:port", text);
                return -1;
            }
            port_text = text;
        } else {
            host = text;
            host_len = (size_t)(colon - text);
            port_text = colon + 1;
            if (host_len == 0 && !passive) {
                snprintf(why, why_len, "'%s' has an empty host (expected host:port)", text);
                return -1;
            }
        }
    }
    if (host_len >= sizeof ep->host) {
        snprintf(why, why_len, "'%s': host name too long", text);
        return -1;
    }
    uint64_t port;
    const char *pwhy;
    if (!*port_text || !isdigit((unsigned char)*port_text) ||
        spct_parse_u64(port_text, &port, &pwhy) < 0 || strpbrk(port_text, "kKmMgGxX")) {
        snprintf(why, why_len, "'%s': port '%s' is not a number", text, port_text);
        return -1;
    }
    if (port > 65535 || (port == 0 && !passive)) {
        snprintf(why, why_len, "'%s': port %s is out of range (%s..65535)", text, port_text,
                 passive ? "0" : "1");
        return -1;
    }
    memcpy(ep->host, host, host_len);
    ep->host[host_len] = '\0';
    ep->port = (unsigned)port;
    return 0;
}

void spct_format_sockaddr(const struct sockaddr *sa, char *buf, size_t len)
{
    char addr[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
        snprintf(buf, len, "%s:%u", addr, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
        snprintf(buf, len, "[%s]:%u", addr, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, len, "(address family %d)", sa->sa_family);
    }
}

/* ------------------------------------------------------------ pattern */

static uint32_t mulmod(uint32_t a, uint32_t b)
{
    uint64_t p = (uint64_t)a * b;
    p = (p & SPCT_LCG_MOD) + (p >> 31);
    p = (p & SPCT_LCG_MOD) + (p >> 31);
    if (p >= SPCT_LCG_MOD)
        p -= SPCT_LCG_MOD;
    return (uint32_t)p;
}

uint32_t spct_lcg_at(uint64_t n)
{
    uint32_t result = 1, base = SPCT_LCG_MUL;
    while (n) {
        if (n & 1)
            result = mulmod(result, base);
        base = mulmod(base, base);
        n >>= 1;
    }
    return result;
}

static void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void spct_pattern_fill(void *dst, size_t n, uint64_t pos)
{
    uint8_t *d = dst;
    uint32_t x = spct_lcg_at(pos);
    for (size_t i = 0; i < n; i++) {
        x = spct_lcg_next(x);
        store_be32(d + 4 * i, x);
    }
}

size_t spct_pattern_check(const void *src, size_t n, uint64_t pos, uint32_t *got, uint32_t *want)
{
    const uint8_t *s = src;
    uint32_t x = spct_lcg_at(pos);
    for (size_t i = 0; i < n; i++) {
        x = spct_lcg_next(x);
        uint32_t v = load_be32(s + 4 * i);
        if (v != x) {
            *got = v;
            *want = x;
            return i;
        }
    }
    return n;
}

/* ------------------------------------------------------------ output */

void spct_json_bytes(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20 || c >= 0x7f)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
    }
    fputc('"', f);
}

void spct_json_string(FILE *f, const char *s)
{
    if (!s)
        fputs("null", f);
    else
        spct_json_bytes(f, s, strlen(s));
}

void spct_json_double(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("null", f);
}

double spct_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void spct_sleep(double seconds)
{
    if (seconds <= 0)
        return;
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !spct_interrupted)
        ;
}

int spct_write_file_atomic(const char *path, const char *text)
{
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp)
        return -ENOMEM;
    snprintf(tmp, len + 16, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        int e = errno;
        free(tmp);
        return -e;
    }
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) < 0) {
        int e = errno ? errno : EIO;
        unlink(tmp);
        free(tmp);
        return -e;
    }
    free(tmp);
    return 0;
}
