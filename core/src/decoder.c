/* SPEAD packet parsing and heap reassembly.
 *
 * A live heap keeps its payload buffer, the byte ranges received (sorted, disjoint) and
 * the user item pointers of each packet (IDs 1-4 dropped, NULL pointers kept because
 * their addresses end the previous item). Items are resolved only when the heap leaves
 * the live set: packets are ordered by heap offset, pointers de-duplicated, and each
 * addressed item runs to the next addressed pointer's address.
 *
 * add_packet first checks and prepares everything that can fail (allocations, the item
 * list of a heap the packet completes, the item list of a heap it evicts), then commits,
 * so a rejected packet leaves no trace beyond the bad_packets counter. When the packet
 * that would complete a heap leaves pointers that do not resolve, it is refused: the heap
 * stays live until eviction or flush delivers it incomplete and without items.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "sized.h"
#include "speadcast/decoder.h"

#define SPEAD_MAGIC 0x53
#define SPEAD_VERSION 4
#define SIZE_UNKNOWN UINT64_MAX
/* Bookkeeping (ranges, packet records, pointers) a heap may hold beyond max_heap_size. */
#define META_SLACK (64u << 10)

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void store_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t ptr_id(uint64_t w, unsigned hab)
{
    return (w & ~(UINT64_C(1) << 63)) >> hab;
}

static uint64_t ptr_value(uint64_t w, unsigned hab)
{
    return w & ((UINT64_C(1) << hab) - 1);
}

static bool ptr_immediate(uint64_t w)
{
    return w >> 63;
}

static bool id_special(uint64_t id)
{
    return id >= SPC_ID_HEAP_CNT && id <= SPC_ID_PAYLOAD_LENGTH;
}

/* ------------------------------------------------------------------ parsing */

int spc_packet_parse(const void *data, size_t len, struct spc_packet_info *info)
{
    const uint8_t *p = data;
    if (!info || (!data && len))
        return -EINVAL;
    if (len < 1)
        return -SPC_ETRUNCATED;
    if (p[0] != SPEAD_MAGIC)
        return -SPC_EBAD_MAGIC;
    if (len < 2)
        return -SPC_ETRUNCATED;
    if (p[1] != SPEAD_VERSION)
        return -SPC_EBAD_VERSION;
    if (len < 4)
        return -SPC_ETRUNCATED;
    if (p[3] < 1 || p[3] > 7 || p[2] + p[3] != 8)
        return -SPC_EBAD_WIDTHS;
    if (len < 8)
        return -SPC_ETRUNCATED;
    size_t n = (size_t)p[6] << 8 | p[7];
    if ((len - 8) / 8 < n)
        return -SPC_ETRUNCATED;

    unsigned hab = 8u * p[3];
    bool have_cnt = false, have_size = false, have_offset = false, have_length = false;
    uint64_t cnt = 0, size = SIZE_UNKNOWN, offset = 0, length = 0;
    const uint8_t *ptrs = p + 8;
    /* The first immediate occurrence of each special item counts. */
    for (size_t i = 0; i < n; i++) {
        uint64_t w = load_be64(ptrs + 8 * i);
        if (!ptr_immediate(w))
            continue;
        uint64_t v = ptr_value(w, hab);
        switch (ptr_id(w, hab)) {
        case SPC_ID_HEAP_CNT:
            if (!have_cnt)
                cnt = v;
            have_cnt = true;
            break;
        case SPC_ID_HEAP_SIZE:
            if (!have_size)
                size = v;
            have_size = true;
            break;
        case SPC_ID_HEAP_OFFSET:
            if (!have_offset)
                offset = v;
            have_offset = true;
            break;
        case SPC_ID_PAYLOAD_LENGTH:
            if (!have_length)
                length = v;
            have_length = true;
            break;
        default:
            break;
        }
    }
    if (!have_cnt || !have_length)
        return -SPC_EMISSING_FIELD;
    size_t avail = len - 8 - 8 * n;
    if (length > avail)
        return -SPC_ETRUNCATED;
    if (have_size && (offset > size || length > size - offset))
        return -SPC_EBAD_OFFSET;

    info->heap_address_bits = hab;
    info->heap_cnt = cnt;
    info->heap_size = size;
    info->heap_offset = offset;
    info->payload_length = length;
    info->n_pointers = n;
    info->pointers = ptrs;
    info->payload = ptrs + 8 * n;
    info->packet_size = 8 + 8 * n + (size_t)length;
    return 0;
}

/* -------------------------------------------------------------- structures */

struct range {
    uint64_t offset, length; /* length > 0 */
};

/* A packet's user pointers: n big-endian words at words[start] in the heap's store. */
struct prec {
    uint64_t offset;
    uint64_t seq; /* arrival order, breaks offset ties */
    size_t start, n;
};

/* A delivered heap and the link of the ready list. Allocated when the heap goes live so
 * that eviction and flush cannot fail for want of it. */
struct outheap {
    struct spc_decoded_heap pub; /* first: spc_decoded_heap_free converts back */
    struct outheap *next;
};

struct live {
    struct outheap *out;
    uint64_t cnt;
    unsigned hab;
    uint64_t heap_size; /* SIZE_UNKNOWN until a packet announces it */
    uint8_t *buf;       /* zero except where payload arrived */
    size_t cap;
    uint64_t extent;    /* end of the furthest range received */
    uint64_t received;
    size_t n_packets;   /* accepted, duplicates excluded */
    struct range *ranges;
    size_t n_ranges, cap_ranges;
    struct prec *precs;
    size_t n_precs, cap_precs;
    uint8_t *words;
    size_t n_words, cap_words; /* in pointers */
    size_t meta;               /* bytes of bookkeeping charged against the limit */
};

struct spc_decoder {
    struct spc_decoder_config cfg;
    struct live **live; /* oldest first */
    size_t n_live;
    struct outheap *ready_head, *ready_tail;
    uint64_t seq;
    struct spc_decoder_stats stats;
};

/* Items resolved from a heap: one block holding the items then the kept pointer words
 * (immediate data points into those). Addressed items hold their address in value and
 * get data once the payload buffer is final. */
struct resolved {
    struct spc_decoded_item *items;
    size_t n_items;
    bool has_start, has_stop;
};

/* ------------------------------------------------------------ resolution */

struct pref {
    uint64_t offset, seq;
    const uint8_t *words;
    size_t n;
};

struct wpos {
    uint64_t word;
    size_t pos;
};

static int cmp_pref(const void *a, const void *b)
{
    const struct pref *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_wpos(const void *a, const void *b)
{
    const struct wpos *x = a, *y = b;
    if (x->word != y->word)
        return x->word < y->word ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Resolves the items of h, plus a packet not yet committed (pending, may be NULL), with
 * addressed items ending at `end`. Errors: -SPC_EBAD_POINTER, -ENOMEM. */
static int resolve(const struct live *h, const struct pref *pending, uint64_t end,
                   struct resolved *res)
{
    size_t n_refs = h->n_precs + (pending ? 1 : 0), total = 0;
    struct pref *refs = malloc((n_refs ? n_refs : 1) * sizeof(*refs));
    if (!refs)
        return -ENOMEM;
    for (size_t i = 0; i < h->n_precs; i++) {
        const struct prec *r = &h->precs[i];
        refs[i] = (struct pref){r->offset, r->seq, h->words + 8 * r->start, r->n};
        total += r->n;
    }
    if (pending) {
        refs[h->n_precs] = *pending;
        total += pending->n;
    }
    qsort(refs, n_refs, sizeof(*refs), cmp_pref);

    /* Pointers in heap-offset order; keep the first of identical words. */
    struct wpos *wp = malloc((total ? total : 1) * sizeof(*wp));
    bool *keep = calloc(total ? total : 1, sizeof(*keep));
    if (!wp || !keep) {
        free(refs);
        free(wp);
        free(keep);
        return -ENOMEM;
    }
    size_t pos = 0;
    for (size_t i = 0; i < n_refs; i++)
        for (size_t j = 0; j < refs[i].n; j++) {
            wp[pos].word = load_be64(refs[i].words + 8 * j);
            wp[pos].pos = pos;
            pos++;
        }
    free(refs);
    uint64_t *ordered = malloc((total ? total : 1) * sizeof(*ordered));
    if (!ordered) {
        free(wp);
        free(keep);
        return -ENOMEM;
    }
    for (size_t i = 0; i < total; i++)
        ordered[i] = wp[i].word;
    qsort(wp, total, sizeof(*wp), cmp_wpos);
    for (size_t i = 0; i < total; i++)
        if (i == 0 || wp[i].word != wp[i - 1].word)
            keep[wp[i].pos] = true;
    free(wp);

    size_t n_kept = 0, n_items = 0;
    for (size_t i = 0; i < total; i++) {
        if (!keep[i])
            continue;
        ordered[n_kept++] = ordered[i];
        if (ptr_id(ordered[i], h->hab) != SPC_ID_NULL && !id_special(ptr_id(ordered[i], h->hab)))
            n_items++;
    }
    free(keep);

    /* Walk backwards so each addressed pointer sees the next one's address. */
    uint64_t next = end;
    for (size_t i = n_kept; i-- > 0;) {
        uint64_t w = ordered[i];
        if (ptr_immediate(w) || id_special(ptr_id(w, h->hab)))
            continue;
        uint64_t a = ptr_value(w, h->hab);
        if (a > next) {
            free(ordered);
            return -SPC_EBAD_POINTER;
        }
        next = a;
    }

    size_t bytes = n_items * sizeof(struct spc_decoded_item) + 8 * n_kept;
    uint8_t *block = malloc(bytes ? bytes : 1);
    if (!block) {
        free(ordered);
        return -ENOMEM;
    }
    struct spc_decoded_item *items = (struct spc_decoded_item *)block;
    uint8_t *wstore = block + n_items * sizeof(struct spc_decoded_item);
    unsigned vbytes = h->hab / 8;
    *res = (struct resolved){items, n_items, false, false};
    next = end;
    size_t k = n_items;
    for (size_t i = n_kept; i-- > 0;) {
        uint64_t w = ordered[i];
        uint64_t id = ptr_id(w, h->hab), v = ptr_value(w, h->hab);
        store_be64(wstore + 8 * i, w);
        if (id_special(id))
            continue;
        bool imm = ptr_immediate(w);
        uint64_t len = 0;
        if (!imm) {
            len = next - v;
            next = v;
        }
        if (id == SPC_ID_NULL)
            continue;
        struct spc_decoded_item *it = &items[--k];
        it->id = id;
        it->immediate = imm;
        it->value = v;
        it->data = imm ? wstore + 8 * i + (8 - vbytes) : NULL;
        it->len = imm ? vbytes : (size_t)len;
        if (imm && id == SPC_ID_STREAM_CTRL) {
            res->has_start |= v == SPC_CTRL_START;
            res->has_stop |= v == SPC_CTRL_STOP;
        }
    }
    free(ordered);
    return 0;
}

/* ------------------------------------------------------------- live heaps */

static void live_free(struct live *h)
{
    if (!h)
        return;
    free(h->out);
    free(h->buf);
    free(h->ranges);
    free(h->precs);
    free(h->words);
    free(h);
}

static struct live *live_new(uint64_t cnt, unsigned hab)
{
    struct live *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->out = calloc(1, sizeof(*h->out));
    if (!h->out) {
        free(h);
        return NULL;
    }
    h->cnt = cnt;
    h->hab = hab;
    h->heap_size = SIZE_UNKNOWN;
    return h;
}

/* Makes the buffer hold at least `need` bytes (at least 1, so item data is never an
 * offset from NULL), zero-filling what is new. Growth is geometric up to `limit`. */
static int buf_reserve(struct live *h, uint64_t need, uint64_t limit)
{
    if (need < 1)
        need = 1;
    if (need <= h->cap)
        return 0;
    uint64_t cap = h->cap ? h->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > limit)
        cap = limit > need ? limit : need;
    if (cap > SIZE_MAX)
        return -ENOMEM;
    uint8_t *b = realloc(h->buf, (size_t)cap);
    if (!b)
        return -ENOMEM;
    memset(b + h->cap, 0, (size_t)cap - h->cap);
    h->buf = b;
    h->cap = (size_t)cap;
    return 0;
}

/* Index of the first range whose offset is >= off. */
static size_t range_lower(const struct live *h, uint64_t off)
{
    size_t lo = 0, hi = h->n_ranges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->ranges[mid].offset < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Fills the output heap from h and its resolved items (res NULL: none resolvable) and
 * appends it to the ready list; h's buffer moves to the output and h is freed. */
static void deliver(struct spc_decoder *dec, struct live *h, const struct resolved *res,
                    bool complete)
{
    struct outheap *o = h->out;
    struct spc_decoded_heap *p = &o->pub;
    p->cnt = h->cnt;
    p->flavour = (struct spc_flavour){h->hab, dec->cfg.bug_compat};
    p->complete = complete;
    p->heap_size = h->heap_size;
    p->received = h->received;
    p->n_packets = h->n_packets;
    p->payload = h->buf; /* never NULL: add_parsed reserves at least one byte */
    if (res) {
        p->items = res->items;
        p->n_items = res->n_items;
        p->has_start = res->has_start;
        p->has_stop = res->has_stop;
        for (size_t i = 0; i < res->n_items; i++)
            if (!p->items[i].immediate)
                p->items[i].data = p->payload + p->items[i].value;
    }
    h->buf = NULL;
    h->out = NULL;
    live_free(h);
    if (complete)
        dec->stats.heaps_complete++;
    else
        dec->stats.heaps_incomplete++;
    o->next = NULL;
    if (dec->ready_tail)
        dec->ready_tail->next = o;
    else
        dec->ready_head = o;
    dec->ready_tail = o;
}

static uint64_t live_end(const struct live *h)
{
    return h->heap_size != SIZE_UNKNOWN ? h->heap_size : h->extent;
}

/* Delivers an incomplete heap. A heap whose pointers do not resolve (or, under memory
 * pressure, cannot be resolved) is delivered without items. */
static void deliver_incomplete(struct spc_decoder *dec, struct live *h)
{
    struct resolved r;
    deliver(dec, h, resolve(h, NULL, live_end(h), &r) == 0 ? &r : NULL, false);
}

static void live_remove(struct spc_decoder *dec, size_t idx)
{
    memmove(&dec->live[idx], &dec->live[idx + 1], (dec->n_live - idx - 1) * sizeof(*dec->live));
    dec->n_live--;
}

/* ------------------------------------------------------------------ decoder */

int spc_decoder_create(struct spc_decoder **out, const struct spc_decoder_config *cfg)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    struct spc_decoder_config c = SPC_DECODER_CONFIG_DEFAULT;
    if (cfg && spci_sized_in(&c, cfg, sizeof c) < 0)
        return -EINVAL;
    if (c.max_heap_size == 0 || c.max_live_heaps == 0 || c.bug_compat > 7 ||
        c.max_live_heaps > SIZE_MAX / sizeof(struct live *))
        return -EINVAL;
    struct spc_decoder *dec = calloc(1, sizeof(*dec));
    if (!dec)
        return -ENOMEM;
    dec->live = calloc(c.max_live_heaps, sizeof(*dec->live));
    if (!dec->live) {
        free(dec);
        return -ENOMEM;
    }
    dec->cfg = c;
    *out = dec;
    return 0;
}

void spc_decoder_destroy(struct spc_decoder *dec)
{
    if (!dec)
        return;
    for (size_t i = 0; i < dec->n_live; i++)
        live_free(dec->live[i]);
    free(dec->live);
    struct outheap *o = dec->ready_head;
    while (o) {
        struct outheap *next = o->next;
        spc_decoded_heap_free(&o->pub);
        o = next;
    }
    free(dec);
}

void spc_decoded_heap_free(struct spc_decoded_heap *heap)
{
    if (!heap)
        return;
    free(heap->items);
    free(heap->payload);
    free((struct outheap *)heap);
}

static int add_parsed(struct spc_decoder *dec, const struct spc_packet_info *pi)
{
    const uint64_t limit = dec->cfg.max_heap_size;
    const uint64_t meta_limit = limit > UINT64_MAX - META_SLACK ? UINT64_MAX : limit + META_SLACK;
    const unsigned hab = pi->heap_address_bits;
    const uint64_t end = pi->heap_offset + pi->payload_length; /* < 2^57: no overflow */
    if (pi->heap_size != SIZE_UNKNOWN && pi->heap_size > limit)
        return -SPC_EHEAP_LIMIT;
    if (end > limit)
        return -SPC_EHEAP_LIMIT;

    size_t idx = dec->n_live;
    for (size_t i = 0; i < dec->n_live; i++)
        if (dec->live[i]->cnt == pi->heap_cnt) {
            idx = i;
            break;
        }
    struct live *h = idx < dec->n_live ? dec->live[idx] : NULL;

    uint64_t size = pi->heap_size;
    if (h) {
        if (h->hab != hab)
            return -SPC_EINCONSISTENT;
        if (size != SIZE_UNKNOWN) {
            if (h->heap_size != SIZE_UNKNOWN && h->heap_size != size)
                return -SPC_EINCONSISTENT;
            if (h->extent > size)
                return -SPC_EINCONSISTENT;
        } else {
            size = h->heap_size;
        }
        if (size != SIZE_UNKNOWN && end > size)
            return -SPC_EBAD_OFFSET;
    }

    size_t n_user = 0;
    for (size_t i = 0; i < pi->n_pointers; i++) {
        uint64_t w = load_be64(pi->pointers + 8 * i);
        if (id_special(ptr_id(w, hab)))
            continue;
        n_user++;
        if (!ptr_immediate(w) && size != SIZE_UNKNOWN && ptr_value(w, hab) > size)
            return -SPC_EBAD_POINTER;
    }

    /* Duplicate (same range as one received) or overlap. */
    bool dup = false;
    size_t ridx = 0;
    if (h && pi->payload_length > 0) {
        ridx = range_lower(h, pi->heap_offset);
        if (ridx < h->n_ranges && h->ranges[ridx].offset == pi->heap_offset &&
            h->ranges[ridx].length == pi->payload_length)
            dup = true;
        else if ((ridx < h->n_ranges && h->ranges[ridx].offset < end) ||
                 (ridx > 0 && h->ranges[ridx - 1].offset + h->ranges[ridx - 1].length >
                                  pi->heap_offset))
            return -SPC_EINCONSISTENT;
    }
    bool store_range = !dup && pi->payload_length > 0;
    bool store_ptrs = !dup && n_user > 0;

    size_t meta = h ? h->meta : 0;
    if (store_range)
        meta += sizeof(struct range);
    if (store_ptrs)
        meta += sizeof(struct prec) + 8 * n_user;
    if (meta > meta_limit)
        return -SPC_EHEAP_LIMIT;

    uint64_t received = (h ? h->received : 0) + (dup ? 0 : pi->payload_length);
    bool complete = size != SIZE_UNKNOWN && received == size;

    /* Prepare: nothing observable changes until the commit below. */
    bool fresh = !h;
    if (fresh) {
        h = live_new(pi->heap_cnt, hab);
        if (!h)
            return -ENOMEM;
    }
    int rc = 0;
    if (size != SIZE_UNKNOWN)
        rc = buf_reserve(h, size, size);
    else
        rc = buf_reserve(h, end, limit);
    if (rc == 0 && store_range)
        rc = spci_grow((void **)&h->ranges, &h->cap_ranges, h->n_ranges + 1, sizeof(*h->ranges));
    if (rc == 0 && store_ptrs)
        rc = spci_grow((void **)&h->precs, &h->cap_precs, h->n_precs + 1, sizeof(*h->precs));
    if (rc == 0 && store_ptrs)
        rc = spci_grow((void **)&h->words, &h->cap_words, h->n_words + n_user, 8);
    struct resolved res, evict_res;
    bool have_evict_res = false;
    uint64_t seq = dec->seq;
    if (rc == 0 && complete) {
        /* Resolve with the user pointers of this packet, read from the caller's buffer
         * through a filtered copy so the pending record looks like a stored one. */
        uint8_t *tmp = NULL;
        struct pref pend = {pi->heap_offset, seq, NULL, 0};
        if (store_ptrs) {
            tmp = malloc(8 * n_user);
            if (!tmp) {
                rc = -ENOMEM;
            } else {
                for (size_t i = 0; i < pi->n_pointers; i++) {
                    const uint8_t *wp = pi->pointers + 8 * i;
                    if (!id_special(ptr_id(load_be64(wp), hab)))
                        memcpy(tmp + 8 * pend.n++, wp, 8);
                }
                pend.words = tmp;
            }
        }
        if (rc == 0)
            rc = resolve(h, store_ptrs ? &pend : NULL, size, &res);
        free(tmp);
    }
    if (rc == 0 && !complete && fresh && dec->n_live == dec->cfg.max_live_heaps) {
        struct live *old = dec->live[0];
        rc = resolve(old, NULL, live_end(old), &evict_res);
        if (rc == -SPC_EBAD_POINTER)
            rc = 0; /* the evicted heap goes out without items */
        else if (rc == 0)
            have_evict_res = true;
    }
    if (rc < 0) {
        if (fresh)
            live_free(h);
        return rc;
    }

    /* Commit. */
    dec->seq++;
    h->n_packets += !dup;
    if (store_range) {
        memcpy(h->buf + pi->heap_offset, pi->payload, (size_t)pi->payload_length);
        memmove(&h->ranges[ridx + 1], &h->ranges[ridx], (h->n_ranges - ridx) * sizeof(*h->ranges));
        h->ranges[ridx] = (struct range){pi->heap_offset, pi->payload_length};
        h->n_ranges++;
        h->received += pi->payload_length;
        if (end > h->extent)
            h->extent = end;
    }
    if (store_ptrs) {
        h->precs[h->n_precs++] = (struct prec){pi->heap_offset, seq, h->n_words, n_user};
        for (size_t i = 0; i < pi->n_pointers; i++) {
            const uint8_t *wp = pi->pointers + 8 * i;
            if (!id_special(ptr_id(load_be64(wp), hab)))
                memcpy(h->words + 8 * h->n_words++, wp, 8);
        }
    }
    h->meta = meta;
    h->heap_size = size;

    if (complete) {
        if (!fresh)
            live_remove(dec, idx);
        deliver(dec, h, &res, true);
    } else if (fresh) {
        if (dec->n_live == dec->cfg.max_live_heaps) {
            struct live *old = dec->live[0];
            live_remove(dec, 0);
            deliver(dec, old, have_evict_res ? &evict_res : NULL, false);
        }
        dec->live[dec->n_live++] = h;
    }
    return 0;
}

int spc_decoder_add_packet(struct spc_decoder *dec, const void *data, size_t len, size_t *consumed)
{
    if (consumed)
        *consumed = 0;
    if (!dec)
        return -EINVAL;
    struct spc_packet_info pi;
    int rc = spc_packet_parse(data, len, &pi);
    if (rc == 0) {
        if (consumed)
            *consumed = pi.packet_size;
        rc = add_parsed(dec, &pi);
    }
    if (rc < 0)
        dec->stats.bad_packets++;
    else
        dec->stats.packets++;
    return rc;
}

int spc_decoder_add_stream(struct spc_decoder *dec, const void *data, size_t len, size_t *consumed)
{
    const uint8_t *p = data;
    size_t off = 0;
    int rc = 0;
    if (consumed)
        *consumed = 0;
    if (!dec || (!data && len))
        return -EINVAL;
    while (off < len) {
        size_t used;
        rc = spc_decoder_add_packet(dec, p + off, len - off, &used);
        if (rc < 0)
            break;
        off += used;
    }
    if (consumed)
        *consumed = off;
    return rc;
}

int spc_decoder_pop(struct spc_decoder *dec, struct spc_decoded_heap **out)
{
    if (!dec || !out)
        return -EINVAL;
    struct outheap *o = dec->ready_head;
    if (!o) {
        *out = NULL;
        return 0;
    }
    dec->ready_head = o->next;
    if (!dec->ready_head)
        dec->ready_tail = NULL;
    o->next = NULL;
    *out = &o->pub;
    return 1;
}

void spc_decoder_flush(struct spc_decoder *dec)
{
    if (!dec)
        return;
    for (size_t i = 0; i < dec->n_live; i++)
        deliver_incomplete(dec, dec->live[i]);
    dec->n_live = 0;
}

void spc_decoder_stats(const struct spc_decoder *dec, struct spc_decoder_stats *out)
{
    if (!out)
        return;
    struct spc_decoder_stats none = SPC_DECODER_STATS_INIT;
    spci_sized_out(out, dec ? &dec->stats : &none, sizeof none);
}
