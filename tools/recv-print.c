/* speadcast-recv's output: heaps, stop heaps, descriptors and the summary, as text or as
 * one JSON object per line. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "recv.h"

/* ------------------------------------------------------------ printing values */

static void print_shape(FILE *f, const int64_t *shape, size_t n, bool json)
{
    fputc(json ? '[' : '(', f);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputs(", ", f);
        if (shape[i] < 0)
            fputs(json ? "-1" : "?", f);
        else
            fprintf(f, "%" PRId64, shape[i]);
    }
    if (!json && n == 1)
        fputc(',', f);
    fputc(json ? ']' : ')', f);
}

/* Element layout of a simple numeric dtype (">u4", "<i2", "|u1", "<f8") or a single
 * byte-aligned format field; 0 if the item is not of that kind. */
static size_t element_layout(const struct spc_descriptor_info *d, char *type, bool *big)
{
    if (!d)
        return 0;
    if (d->dtype) {
        const char *t = d->dtype;
        if ((t[0] != '<' && t[0] != '>' && t[0] != '|') || !strchr("uif", t[1]))
            return 0;
        char *end;
        unsigned long size = strtoul(t + 2, &end, 10);
        if (*end || (size != 1 && size != 2 && size != 4 && size != 8) ||
            (t[1] == 'f' && size < 4))
            return 0;
        *type = t[1];
        *big = t[0] == '>';
        return size;
    }
    if (d->n_format == 1 && strchr("uif", d->format[0].type) && d->format[0].bits % 8 == 0 &&
        d->format[0].bits >= 8 && d->format[0].bits <= 64 &&
        (d->format[0].type != 'f' || d->format[0].bits >= 32)) {
        *type = d->format[0].type;
        *big = true;
        return d->format[0].bits / 8;
    }
    return 0;
}

static void print_element(FILE *f, const uint8_t *p, size_t size, char type, bool big)
{
    uint64_t v = 0;
    for (size_t i = 0; i < size; i++)
        v = v << 8 | p[big ? i : size - 1 - i];
    if (type == 'u') {
        fprintf(f, "%" PRIu64, v);
    } else if (type == 'i') {
        if (size < 8 && (v >> (size * 8 - 1)) & 1)
            v |= ~UINT64_C(0) << (size * 8);
        fprintf(f, "%" PRId64, (int64_t)v);
    } else if (size == 4) {
        uint32_t w = (uint32_t)v;
        float x;
        memcpy(&x, &w, 4);
        fprintf(f, "%g", x);
    } else {
        double x;
        memcpy(&x, &v, 8);
        fprintf(f, "%g", x);
    }
}

/* The bytes an item's value occupies: for immediates, the trailing bytes of the
 * pointer's value field that hold it. */
static void item_bytes(const struct spc_decoded_item *it, const struct spc_descriptor_info *d,
                       const uint8_t **data, size_t *len)
{
    *data = it->data;
    *len = it->len;
    if (it->immediate && d) {
        char type;
        bool big;
        size_t es = element_layout(d, &type, &big);
        size_t n = 1;
        for (size_t i = 0; i < d->n_dims; i++)
            n *= d->shape[i] < 0 ? 0 : (size_t)d->shape[i];
        if (es && n * es <= it->len) {
            *data = it->data + it->len - n * es;
            *len = n * es;
        }
    }
}

static void print_item_text(FILE *f, const struct spc_decoded_item *it,
                            const struct spc_descriptor_info *d)
{
    fprintf(f, "  0x%" PRIx64, it->id);
    if (d)
        fprintf(f, " '%s'", d->name);
    const uint8_t *data;
    size_t len;
    item_bytes(it, d, &data, &len);
    fprintf(f, " = [%zu bytes%s]", len, it->immediate ? ", immediate" : "");
    char type;
    bool big;
    size_t es = element_layout(d, &type, &big);
    if (es && len >= es) {
        size_t n = len / es;
        for (size_t i = 0; i < n && i < 4; i++) {
            fputc(' ', f);
            print_element(f, data + i * es, es, type, big);
        }
        if (n > 4)
            fputs(" ...", f);
    } else if (len) {
        fputc(' ', f);
        for (size_t i = 0; i < len && i < 16; i++)
            fprintf(f, "%02x", data[i]);
        if (len > 16)
            fputs("...", f);
    }
    fputc('\n', f);
}

static void print_desc_text(FILE *f, const struct spc_descriptor_info *d)
{
    fprintf(f, "  descriptor 0x%" PRIx64 " '%s': %s; ", d->id, d->name, d->description);
    if (d->dtype)
        fprintf(f, "dtype %s", d->dtype);
    else {
        fputs("format [", f);
        for (size_t i = 0; i < d->n_format; i++)
            fprintf(f, "%s(%c, %" PRIu32 ")", i ? ", " : "", d->format[i].type, d->format[i].bits);
        fputc(']', f);
    }
    fputs(", shape ", f);
    print_shape(f, d->shape, d->n_dims, false);
    fputc('\n', f);
}

static void print_desc_json(FILE *f, const struct spc_descriptor_info *d)
{
    fprintf(f, "{\"id\": %" PRIu64 ", \"name\": ", d->id);
    spct_json_string(f, d->name);
    fputs(", \"description\": ", f);
    spct_json_string(f, d->description);
    fputs(", \"shape\": ", f);
    print_shape(f, d->shape, d->n_dims, true);
    fputs(", \"dtype\": ", f);
    spct_json_string(f, d->dtype);
    fputs(", \"format\": [", f);
    for (size_t i = 0; i < d->n_format; i++) {
        char t[2] = {d->format[i].type, '\0'};
        fprintf(f, "%s[", i ? ", " : "");
        spct_json_string(f, t);
        fprintf(f, ", %" PRIu32 "]", d->format[i].bits);
    }
    fputs("]}", f);
}


void spct_rx_print_stop(struct spct_rx *rx, const struct spct_rx_source *s,
                        const struct spc_decoded_heap *h, double at)
{
    const struct spct_recv_opts *o = rx->o;
    FILE *out = rx->out;
    if (o->quiet) {
        /* summary only */
    } else if (o->json) {
        fprintf(out, "{\"type\": \"stop\", \"cnt\": %" PRIu64 ", \"source\": %zu, "
                "\"heap_address_bits\": %u, \"at\": ", h->cnt, s->index,
                h->flavour.heap_address_bits);
        spct_json_double(out, at);
        fputs("}\n", out);
    } else {
        fprintf(out, "Received stop heap %" PRIu64 " at %.6f from %s\n", h->cnt, at, s->name);
    }
}

void spct_rx_print_heap(struct spct_rx *rx, const struct spct_rx_source *s,
                        const struct spc_decoded_heap *h, double at, int verdict,
                        const char *why)
{
    const struct spct_recv_opts *o = rx->o;
    FILE *out = rx->out;
    if (o->quiet) {
        /* summary only */
    } else if (o->json) {
        fprintf(out, "{\"type\": \"heap\", \"cnt\": %" PRIu64 ", \"source\": %zu, "
                "\"heap_address_bits\": %u, \"at\": ", h->cnt, s->index,
                h->flavour.heap_address_bits);
        spct_json_double(out, at);
        fprintf(out, ", \"complete\": %s, \"heap_size\": ", h->complete ? "true" : "false");
        if (h->heap_size == UINT64_MAX)
            fputs("null", out);
        else
            fprintf(out, "%" PRIu64, h->heap_size);
        fprintf(out, ", \"received\": %" PRIu64 ", \"packets\": %zu, \"descriptors\": [",
                h->received, h->n_packets);
        bool first = true;
        for (size_t i = 0; i < h->n_items; i++)
            if (h->items[i].id == SPC_ID_DESCRIPTOR) {
                struct spc_descriptor_info *info;
                if (spc_descriptor_parse(&h->items[i], &h->flavour, &info) == 0) {
                    fputs(first ? "" : ", ", out);
                    print_desc_json(out, info);
                    spc_descriptor_info_free(info);
                    first = false;
                }
            }
        fputs("], \"items\": [", out);
        first = true;
        for (size_t i = 0; i < h->n_items; i++) {
            const struct spc_decoded_item *it = &h->items[i];
            if (it->id == SPC_ID_DESCRIPTOR)
                continue;
            const struct spc_descriptor_info *d = spct_rx_find_desc(rx, it->id);
            const uint8_t *data;
            size_t len;
            item_bytes(it, d, &data, &len);
            fprintf(out, "%s{\"id\": %" PRIu64 ", \"name\": ", first ? "" : ", ", it->id);
            spct_json_string(out, d ? d->name : NULL);
            fprintf(out, ", \"bytes\": %zu, \"immediate\": %s}", len,
                    it->immediate ? "true" : "false");
            first = false;
        }
        fputs("], \"verify\": ", out);
        fputs(!o->verify || !h->complete ? "null"
              : verdict > 0             ? "\"ok\""
              : verdict == 0            ? "\"no data\""
                                        : "\"corrupt\"",
              out);
        fputs(", \"problem\": ", out);
        spct_json_string(out, why[0] ? why : NULL);
        fputs("}\n", out);
    } else {
        if (h->complete)
            fprintf(out, "Received heap %" PRIu64 " at %.6f: %" PRIu64 " bytes in %zu packets\n",
                    h->cnt, at, h->heap_size, h->n_packets);
        else
            fprintf(out, "Incomplete heap %" PRIu64 " at %.6f: %" PRIu64 " of %" PRIu64
                    " bytes in %zu packets\n", h->cnt, at, h->received, h->heap_size,
                    h->n_packets);
        for (size_t i = 0; i < h->n_items; i++) {
            const struct spc_decoded_item *it = &h->items[i];
            if (it->id == SPC_ID_DESCRIPTOR) {
                const struct spc_descriptor_info *d = NULL;
                struct spc_descriptor_info *info;
                if (spc_descriptor_parse(it, &h->flavour, &info) == 0) {
                    d = info;
                    print_desc_text(out, d);
                    spc_descriptor_info_free(info);
                }
            } else {
                print_item_text(out, it, spct_rx_find_desc(rx, it->id));
            }
        }
    }
}

void spct_rx_print_summary(struct spct_rx *rx, bool ok)
{
    const struct spct_recv_result *r = &rx->r;
    double gbps = r->seconds > 0 ? r->bytes * 8e-9 / r->seconds : 0.0;
    FILE *out = rx->out;
    if (rx->o->json) {
        fprintf(out,
                "{\"type\": \"summary\", \"heaps\": %" PRIu64 ", \"complete\": %" PRIu64
                ", \"incomplete\": %" PRIu64 ", \"corrupt\": %" PRIu64 ", \"missing\": %" PRIu64
                ", \"stops\": %" PRIu64 ", \"stops_expected\": %" PRIu64 ", \"packets\": %" PRIu64
                ", \"bad_packets\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"seconds\": ",
                r->heaps, r->complete, r->incomplete, r->corrupt, r->missing, r->stops,
                rx->stops_expected, r->packets, r->bad_packets, r->bytes);
        spct_json_double(out, r->seconds);
        fputs(", \"gbps\": ", out);
        spct_json_double(out, gbps);
        fprintf(out, ", \"verify\": %s, \"verified\": %" PRIu64
                ", \"timed_out\": %s, \"finished\": %s, \"ok\": %s}\n",
                rx->o->verify ? "true" : "false", r->verified, r->timed_out ? "true" : "false",
                r->finished ? "true" : "false", ok ? "true" : "false");
    } else {
        fprintf(out, "Received %" PRIu64 " heaps: %" PRIu64 " complete, %" PRIu64
                " incomplete, %" PRIu64 " corrupt", r->heaps, r->complete, r->incomplete,
                r->corrupt);
        if (rx->o->verify)
            fprintf(out, ", %" PRIu64 " missing", r->missing);
        fprintf(out, "; %" PRIu64 " of %" PRIu64 " stop heaps; %" PRIu64 " packets, %" PRIu64
                " bad\n", r->stops, rx->stops_expected, r->packets, r->bad_packets);
        fprintf(out, "Received %" PRIu64 " payload bytes in %g seconds, %g Gb/s\n", r->bytes,
                r->seconds, gbps);
        if (rx->o->verify)
            fprintf(out, "Verify: %s (%" PRIu64 " heaps checked)%s\n", ok ? "OK" : "FAILED",
                    r->verified,
                    r->timed_out && !r->finished ? "; ended before every stop heap arrived" : "");
    }
    fflush(out);
}

