#include "vectorcase.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Test-support allocation: running out of memory aborts the test process. */
static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p)
        abort();
    return p;
}

static void *xmalloc(size_t size)
{
    return xcalloc(1, size);
}

static char *dup_str(const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

size_t vc_list(const char *dir, char ***names)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/MANIFEST", dir);
    *names = NULL;
    char *text = tu_read_file(path, NULL);
    if (!text)
        return 0;
    size_t n = 0, cap = 0;
    char **out = NULL;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *tab = strchr(line, '\t');
        if (tab)
            *tab = '\0';
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(out, cap * sizeof(*out));
            if (!grown)
                break;
            out = grown;
        }
        out[n++] = dup_str(line);
    }
    free(text);
    *names = out;
    return n;
}

void vc_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Appends to a growable string. */
struct sb {
    char *s;
    size_t len, cap;
};

static void sb_add(struct sb *b, const char *t)
{
    size_t n = strlen(t);
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *g = realloc(b->s, cap);
        if (!g)
            abort();
        b->s = g;
        b->cap = cap;
    }
    memcpy(b->s + b->len, t, n + 1);
    b->len += n;
}

/* Writes a structured descr ([[field, descr], ...], nested lists allowed) as the Python
 * repr numpy gives: "[('a', '<u2'), ('b', '>f4')]". */
static int structured_repr(json_t *arr, struct sb *b)
{
    sb_add(b, "[");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *f = json_array_get(arr, i);
        if (!json_is_array(f) || json_array_size(f) != 2 || !json_is_string(json_array_get(f, 0)))
            return -1;
        json_t *d = json_array_get(f, 1);
        sb_add(b, i ? ", ('" : "('");
        sb_add(b, json_string_value(json_array_get(f, 0)));
        sb_add(b, "', ");
        if (json_is_string(d)) {
            sb_add(b, "'");
            sb_add(b, json_string_value(d));
            sb_add(b, "'");
        } else if (!json_is_array(d) || structured_repr(d, b) < 0) {
            return -1;
        }
        sb_add(b, ")");
    }
    sb_add(b, "]");
    return 0;
}

static int load_descriptor(json_t *j, struct vc_entry *e, char *err, size_t errlen)
{
    json_error_t je;
    const char *name, *desc, *order = "C", *header = NULL;
    json_t *shape, *dtype = NULL, *format = NULL;
    json_int_t id;
    if (json_unpack_ex(j, &je, 0, "{s:I, s:s, s:s, s:o, s?o, s?s, s?o, s?s}", "id", &id, "name", &name,
                       "description", &desc, "shape", &shape, "dtype", &dtype, "order", &order,
                       "format", &format, "wire_numpy_header", &header) < 0)
        return fail(err, errlen, "descriptor: %s", je.text);
    e->id = (uint64_t)id;
    e->name = dup_str(name);
    e->description = dup_str(desc);
    e->wire_numpy_header = dup_str(header);
    e->fortran_order = strcmp(order, "F") == 0;
    if (!json_is_array(shape))
        return fail(err, errlen, "descriptor %s: shape is not a list", name);
    e->n_dims = json_array_size(shape);
    e->shape = xcalloc(e->n_dims + 1, sizeof(*e->shape));
    for (size_t i = 0; i < e->n_dims; i++) {
        json_t *d = json_array_get(shape, i);
        if (json_is_null(d))
            e->shape[i] = SPC_DIM_VARIABLE;
        else if (json_is_integer(d))
            e->shape[i] = json_integer_value(d);
        else
            return fail(err, errlen, "descriptor %s: bad shape entry", name);
    }
    if (dtype && json_is_string(dtype)) {
        e->dtype = dup_str(json_string_value(dtype));
    } else if (dtype) {
        struct sb b = {0};
        if (!json_is_array(dtype) || structured_repr(dtype, &b) < 0) {
            free(b.s);
            return fail(err, errlen, "descriptor %s: bad structured dtype", name);
        }
        e->dtype = b.s;
    }
    if (format) {
        if (!json_is_array(format))
            return fail(err, errlen, "descriptor %s: format is not a list", name);
        e->n_format = json_array_size(format);
        e->format = xcalloc(e->n_format + 1, sizeof(*e->format));
        for (size_t i = 0; i < e->n_format; i++) {
            const char *type;
            json_int_t bits;
            if (json_unpack_ex(json_array_get(format, i), &je, 0, "[sI]", &type, &bits) < 0 || strlen(type) != 1)
                return fail(err, errlen, "descriptor %s: bad format field", name);
            e->format[i].type = type[0];
            e->format[i].bits = (uint32_t)bits;
        }
    }
    return 0;
}

static int load_item(json_t *j, struct vc_entry *e, char *err, size_t errlen)
{
    json_error_t je;
    const char *name, *raw_hex;
    json_int_t id;
    int allow, imm;
    if (json_unpack_ex(j, &je, 0, "{s:I, s:s, s:s, s:b, s:b}", "id", &id, "name", &name, "raw_hex", &raw_hex,
                       "allow_immediate", &allow, "immediate", &imm) < 0)
        return fail(err, errlen, "item: %s", je.text);
    e->id = (uint64_t)id;
    e->name = dup_str(name);
    e->allow_immediate = allow;
    e->immediate = imm;
    e->raw = tu_hex_decode(raw_hex, &e->raw_len);
    if (!e->raw)
        return fail(err, errlen, "item %s: bad raw_hex", name);
    return 0;
}

static int load_heap(json_t *j, struct vc_heap *h, char *err, size_t errlen)
{
    json_error_t je;
    json_int_t cnt;
    int repeat;
    json_t *entries;
    if (json_unpack_ex(j, &je, 0, "{s:I, s:b, s:o}", "cnt", &cnt, "repeat_pointers", &repeat, "entries", &entries) < 0)
        return fail(err, errlen, "heap: %s", je.text);
    if (!json_is_array(entries))
        return fail(err, errlen, "heap: entries is not a list");
    h->cnt = (uint64_t)cnt;
    h->repeat_pointers = repeat;
    h->n_entries = json_array_size(entries);
    h->entries = xcalloc(h->n_entries + 1, sizeof(*h->entries));
    for (size_t i = 0; i < h->n_entries; i++) {
        json_t *ej = json_array_get(entries, i);
        struct vc_entry *e = &h->entries[i];
        const char *kind = json_string_value(json_object_get(ej, "kind"));
        int rc;
        if (!kind)
            return fail(err, errlen, "entry %zu: no kind", i);
        if (strcmp(kind, "descriptor") == 0) {
            e->kind = VC_DESCRIPTOR;
            rc = load_descriptor(ej, e, err, errlen);
        } else if (strcmp(kind, "item") == 0) {
            e->kind = VC_ITEM;
            rc = load_item(ej, e, err, errlen);
        } else if (strcmp(kind, "start") == 0) {
            e->kind = VC_START;
            rc = 0;
        } else if (strcmp(kind, "end") == 0) {
            e->kind = VC_END;
            rc = 0;
        } else {
            return fail(err, errlen, "entry %zu: unknown kind %s", i, kind);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int load_hex(const char *path, struct vc_case *c, char *err, size_t errlen)
{
    char *text = tu_read_file(path, NULL);
    if (!text)
        return fail(err, errlen, "cannot read %s", path);
    size_t cap = 0;
    int rc = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[strspn(line, " \t\r")] == '\0')
            continue;
        if (c->n_packets == cap) {
            cap = cap ? cap * 2 : 16;
            struct vc_packet *g = realloc(c->packets, cap * sizeof(*g));
            if (!g)
                abort();
            c->packets = g;
        }
        struct vc_packet *p = &c->packets[c->n_packets];
        p->data = tu_hex_decode(line, &p->len);
        if (!p->data) {
            rc = fail(err, errlen, "%s: bad hex on packet line %zu", path, c->n_packets + 1);
            break;
        }
        c->n_packets++;
    }
    free(text);
    return rc;
}

int vc_load(const char *dir, const char *name, struct vc_case **out, char *err, size_t errlen)
{
    char path[4096];
    json_error_t je;
    snprintf(path, sizeof(path), "%s/%s.json", dir, name);
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        return fail(err, errlen, "%s:%d: %s", path, je.line, je.text);
    struct vc_case *c = xcalloc(1, sizeof(*c));
    const char *cname, *desc;
    json_int_t hab, bc, mps, packets, bytes;
    json_t *group, *heaps;
    int rc;
    if (json_unpack_ex(root, &je, 0, "{s:s, s:s, s:{s:I, s:I}, s:{s:I}, s:o, s:o, s:{s:I, s:I}}", "case", &cname,
                       "description", &desc, "flavour", "heap_address_bits", &hab, "bug_compat", &bc, "stream",
                       "max_packet_size", &mps, "group", &group, "heaps", &heaps, "expected", "packets", &packets,
                       "bytes", &bytes) < 0) {
        rc = fail(err, errlen, "%s: %s", path, je.text);
        goto out;
    }
    c->name = dup_str(cname);
    c->description = dup_str(desc);
    c->flavour = (struct spc_flavour){(unsigned)hab, (unsigned)bc};
    c->max_packet_size = (size_t)mps;
    c->expected_packets = (size_t)packets;
    c->expected_bytes = (uint64_t)bytes;
    if (!json_is_null(group)) {
        const char *mode;
        if (json_unpack_ex(group, &je, 0, "{s:s}", "mode", &mode) < 0) {
            rc = fail(err, errlen, "%s: group: %s", path, je.text);
            goto out;
        }
        c->group_mode = dup_str(mode);
    }
    if (!json_is_array(heaps)) {
        rc = fail(err, errlen, "%s: heaps is not a list", path);
        goto out;
    }
    c->n_heaps = json_array_size(heaps);
    c->heaps = xcalloc(c->n_heaps + 1, sizeof(*c->heaps));
    for (size_t i = 0; i < c->n_heaps; i++) {
        rc = load_heap(json_array_get(heaps, i), &c->heaps[i], err, errlen);
        if (rc < 0)
            goto out;
    }
    snprintf(path, sizeof(path), "%s/%s.hex", dir, name);
    rc = load_hex(path, c, err, errlen);
out:
    json_decref(root);
    if (rc < 0)
        vc_free(c);
    else
        *out = c;
    return rc;
}

void vc_free(struct vc_case *c)
{
    if (!c)
        return;
    for (size_t h = 0; h < c->n_heaps; h++) {
        for (size_t i = 0; i < c->heaps[h].n_entries; i++) {
            struct vc_entry *e = &c->heaps[h].entries[i];
            free(e->name);
            free(e->description);
            free(e->shape);
            free(e->dtype);
            free(e->format);
            free(e->wire_numpy_header);
            free(e->raw);
        }
        free(c->heaps[h].entries);
    }
    for (size_t i = 0; i < c->n_packets; i++)
        free(c->packets[i].data);
    free(c->packets);
    free(c->heaps);
    free(c->name);
    free(c->description);
    free(c->group_mode);
    free(c);
}

void vc_descriptor(const struct vc_entry *e, struct spc_descriptor *d)
{
    *d = (struct spc_descriptor){
        .id = e->id,
        .name = e->name,
        .description = e->description,
        .shape = e->shape,
        .n_dims = e->n_dims,
        .format = e->format,
        .n_format = e->n_format,
        .dtype = e->dtype,
        .fortran_order = e->fortran_order,
    };
}

int vc_build_heap(const struct vc_case *c, size_t i, struct spc_heap **out)
{
    const struct vc_heap *h = &c->heaps[i];
    struct spc_heap *heap;
    int rc = spc_heap_create(&heap, &c->flavour);
    if (rc < 0)
        return rc;
    spc_heap_set_repeat_pointers(heap, h->repeat_pointers);
    for (size_t k = 0; k < h->n_entries && rc == 0; k++) {
        const struct vc_entry *e = &h->entries[k];
        struct spc_descriptor d;
        switch (e->kind) {
        case VC_DESCRIPTOR:
            vc_descriptor(e, &d);
            rc = spc_heap_add_descriptor(heap, &d);
            break;
        case VC_ITEM:
            rc = spc_heap_add_item(heap, e->id, e->raw, e->raw_len, e->allow_immediate);
            break;
        case VC_START:
            rc = spc_heap_add_start(heap);
            break;
        case VC_END:
            rc = spc_heap_add_end(heap);
            break;
        }
    }
    if (rc < 0) {
        spc_heap_destroy(heap);
        return rc;
    }
    *out = heap;
    return 0;
}

int vc_packetize(const struct spc_heap *heap, uint64_t cnt, size_t max_packet_size, struct vc_packets *out)
{
    struct spc_packetizer pz;
    memset(out, 0, sizeof(*out));
    int rc = spc_packetizer_init(&pz, heap, cnt, max_packet_size);
    if (rc < 0)
        return rc;
    out->predicted_count = spc_packetizer_count(&pz);
    out->predicted_bytes = spc_heap_wire_size(heap, cnt, max_packet_size);
    size_t scratch_len = spc_packet_scratch_size(max_packet_size);
    uint8_t *scratch = xmalloc(scratch_len);
    size_t cap = 0;
    struct spc_packet pkt;
    /* Bounded by a generous multiple of the prediction so a runaway walk cannot hang. */
    while (out->n <= 2 * out->predicted_count + 16 && spc_packetizer_next(&pz, scratch, &pkt) == 1) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            struct vc_packet *g = realloc(out->p, cap * sizeof(*g));
            if (!g)
                abort();
            out->p = g;
        }
        struct vc_packet *p = &out->p[out->n++];
        p->len = pkt.size;
        p->data = xmalloc(pkt.size ? pkt.size : 1);
        if (spc_packet_write(&pkt, p->data, pkt.size) != (int64_t)pkt.size)
            abort();
    }
    free(scratch);
    return 0;
}

void vc_packets_free(struct vc_packets *pk)
{
    for (size_t i = 0; i < pk->n; i++)
        free(pk->p[i].data);
    free(pk->p);
    memset(pk, 0, sizeof(*pk));
}

bool vc_same_bytes(const char *label, const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len)
{
    if (got_len == want_len && memcmp(got, want, got_len) == 0)
        return true;
    fprintf(stderr, "%s: %zu bytes produced, %zu expected\n", label, got_len, want_len);
    fprintf(stderr, "  offset  produced          expected\n");
    size_t max = got_len > want_len ? got_len : want_len;
    unsigned shown = 0;
    /* Differing words only (plus the first word, the header), at most 48 lines. */
    for (size_t off = 0; off < max && shown < 48; off += 8) {
        char g[17] = "", w[17] = "";
        bool differs = false;
        for (size_t b = off; b < off + 8 && b < max; b++) {
            char *gp = g + strlen(g), *wp = w + strlen(w);
            if (b < got_len)
                snprintf(gp, 3, "%02x", got[b]);
            else
                snprintf(gp, 3, "--");
            if (b < want_len)
                snprintf(wp, 3, "%02x", want[b]);
            else
                snprintf(wp, 3, "--");
            if (b >= got_len || b >= want_len || got[b] != want[b])
                differs = true;
        }
        if (!differs && off > 0)
            continue;
        fprintf(stderr, "  %6zu  %-16s  %-16s%s\n", off, g, w, differs ? "  <<" : "");
        shown++;
    }
    if (shown == 48)
        fprintf(stderr, "  ... (more differences not shown)\n");
    return false;
}
