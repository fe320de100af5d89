/* speadcast-recv's output: heaps, stop heaps, descriptors and the summary, as text or as
 * one JSON object per line. */
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "recv.h"

/* ------------------------------------------------------------ printing values */

static void print_shape(FILE *f, const int64_t *shape, size_t n)
{
    fputc('(', f);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputs(", ", f);
        if (shape[i] < 0)
            fputs("?", f);
        else
            fprintf(f, "%" PRId64, shape[i]);
    }
    if (n == 1)
        fputc(',', f);
    fputc(')', f);
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
    print_shape(f, d->shape, d->n_dims);
    fputc('\n', f);
}

static json_t *shape_json(const int64_t *shape, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(shape[i] < 0 ? -1 : shape[i]));
    return a;
}

static json_t *desc_json(const struct spc_descriptor_info *d)
{
    json_t *format = json_array();
    for (size_t i = 0; i < d->n_format; i++) {
        char type[2] = {d->format[i].type, '\0'};
        json_array_append_new(format, json_pack("[o, I]", spct_json_text(type),
                                                (json_int_t)d->format[i].bits));
    }
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "id", spct_json_u64(d->id), "name",
                     spct_json_text(d->name), "description", spct_json_text(d->description),
                     "shape", shape_json(d->shape, d->n_dims), "dtype", spct_json_text(d->dtype),
                     "format", format);
}

void spct_rx_print_stop(struct spct_rx *rx, const struct spct_rx_source *s,
                        const struct spc_decoded_heap *h, double at)
{
    const struct spct_recv_opts *o = rx->o;
    FILE *out = rx->out;
    if (o->quiet) {
        /* summary only */
    } else if (o->json) {
        spct_json_print(out, json_pack("{s:s, s:o, s:o, s:i, s:o}", "type", "stop", "cnt",
                                       spct_json_u64(h->cnt), "source", spct_json_u64(s->index),
                                       "heap_address_bits", (int)h->flavour.heap_address_bits,
                                       "at", spct_json_real(at)));
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
        json_t *descs = json_array(), *items = json_array();
        for (size_t i = 0; i < h->n_items; i++) {
            const struct spc_decoded_item *it = &h->items[i];
            if (it->id == SPC_ID_DESCRIPTOR) {
                struct spc_descriptor_info *info;
                if (spc_descriptor_parse(it, &h->flavour, &info) == 0) {
                    json_array_append_new(descs, desc_json(info));
                    spc_descriptor_info_free(info);
                }
                continue;
            }
            const struct spc_descriptor_info *d = spct_rx_find_desc(rx, it->id);
            const uint8_t *data;
            size_t len;
            item_bytes(it, d, &data, &len);
            json_array_append_new(items, json_pack("{s:o, s:o, s:o, s:b}", "id",
                                                   spct_json_u64(it->id), "name",
                                                   spct_json_text(d ? d->name : NULL), "bytes",
                                                   spct_json_u64(len), "immediate",
                                                   it->immediate));
        }
        const char *verify = !o->verify || !h->complete ? NULL
                             : verdict > 0             ? "ok"
                             : verdict == 0            ? "no data"
                                                       : "corrupt";
        spct_json_print(out, json_pack(
            "{s:s, s:o, s:o, s:i, s:o, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "type", "heap",
            "cnt", spct_json_u64(h->cnt), "source", spct_json_u64(s->index), "heap_address_bits",
            (int)h->flavour.heap_address_bits, "at", spct_json_real(at), "complete", h->complete,
            "heap_size", h->heap_size == UINT64_MAX ? json_null() : spct_json_u64(h->heap_size),
            "received", spct_json_u64(h->received), "packets", spct_json_u64(h->n_packets),
            "descriptors", descs, "items", items, "verify", spct_json_text(verify), "problem",
            spct_json_text(why[0] ? why : NULL)));
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
        json_t *j = json_pack(
            "{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "type",
            "summary", "heaps", spct_json_u64(r->heaps), "complete", spct_json_u64(r->complete),
            "incomplete", spct_json_u64(r->incomplete), "corrupt", spct_json_u64(r->corrupt),
            "missing", spct_json_u64(r->missing), "duplicates", spct_json_u64(r->duplicates),
            "duplicate_packets", spct_json_u64(r->duplicate_packets), "unexpected",
            spct_json_u64(r->unexpected), "stops", spct_json_u64(r->stops), "stops_expected",
            spct_json_u64(rx->stops_expected), "packets", spct_json_u64(r->packets),
            "bad_packets", spct_json_u64(r->bad_packets), "bytes", spct_json_u64(r->bytes));
        json_object_set_new(j, "memory_refused", spct_json_u64(r->memory_refused));
        json_object_set_new(j, "connections_refused", spct_json_u64(r->connections_refused));
        json_object_set_new(j, "descriptors_dropped", spct_json_u64(r->descriptors_dropped));
        json_object_set_new(j, "seconds", spct_json_real(r->seconds));
        json_object_set_new(j, "gbps", spct_json_real(gbps));
        json_object_set_new(j, "verify", json_boolean(rx->o->verify));
        json_object_set_new(j, "verified", spct_json_u64(r->verified));
        json_object_set_new(j, "timed_out", json_boolean(r->timed_out));
        json_object_set_new(j, "finished", json_boolean(r->finished));
        json_object_set_new(j, "ok", json_boolean(ok));
        spct_json_print(out, j);
    } else {
        fprintf(out, "Received %" PRIu64 " heaps: %" PRIu64 " complete, %" PRIu64
                " incomplete, %" PRIu64 " corrupt", r->heaps, r->complete, r->incomplete,
                r->corrupt);
        if (rx->o->verify)
            fprintf(out, ", %" PRIu64 " missing", r->missing);
        if (r->duplicates)
            fprintf(out, ", %" PRIu64 " duplicated", r->duplicates);
        if (r->unexpected)
            fprintf(out, ", %" PRIu64 " outside the sequence", r->unexpected);
        fprintf(out, "; %" PRIu64 " of %" PRIu64 " stop heaps; %" PRIu64 " packets, %" PRIu64
                " bad\n", r->stops, rx->stops_expected, r->packets, r->bad_packets);
        fprintf(out, "Received %" PRIu64 " payload bytes in %g seconds, %g Gb/s\n", r->bytes,
                r->seconds, gbps);
        if (r->duplicate_packets || r->memory_refused || r->connections_refused ||
            r->descriptors_dropped)
            fprintf(out, "Also: %" PRIu64 " late duplicate packets, %" PRIu64 " packets over "
                    "--max-memory, %" PRIu64 " connections over --max-connections, %" PRIu64
                    " descriptors over --max-descriptors\n", r->duplicate_packets,
                    r->memory_refused, r->connections_refused, r->descriptors_dropped);
        if (rx->o->verify)
            fprintf(out, "Verify: %s (%" PRIu64 " heaps checked)%s\n", ok ? "OK" : "FAILED",
                    r->verified,
                    r->timed_out && !r->finished ? "; ended before every stop heap arrived" : "");
    }
    fflush(out);
}

