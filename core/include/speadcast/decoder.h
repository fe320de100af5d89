/* Decoding SPEAD packets and reassembling heaps (for tests, tools and the inproc
 * receiver). Malformed input is reported with a specific error code; the decoder
 * never reads outside the buffers it is given and its memory is bounded by its config.
 *
 * Thread rules: a decoder is not thread-safe; use one per thread or lock around it.
 * spc_packet_parse and spc_descriptor_parse are pure and thread-safe.
 */
#ifndef SPEADCAST_DECODER_H
#define SPEADCAST_DECODER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "speadcast/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One packet, parsed in place. Pointers reference the caller's buffer. */
struct spc_packet_info {
    unsigned heap_address_bits;
    uint64_t heap_cnt;
    uint64_t heap_size;      /* UINT64_MAX when the packet has no heap size item */
    uint64_t heap_offset;    /* 0 when absent */
    uint64_t payload_length;
    size_t n_pointers;       /* all pointers, the special ones included */
    const uint8_t *pointers; /* n_pointers big-endian 64-bit words */
    const uint8_t *payload;  /* payload_length bytes */
    size_t packet_size;      /* 8 + 8 * n_pointers + payload_length */
};

/* Parses the packet at the start of data[0..len). Checks magic, version, widths, that
 * the pointers and payload fit in len, that heap cnt and payload length are present and
 * that offset + length is within heap size. Extra bytes after the packet are allowed
 * (info->packet_size says where the next one starts). Bytes 4-5 are ignored. Heap cnt,
 * size, offset and payload length count only as immediates; if one appears twice, the
 * first counts. Errors: -SPC_EBAD_MAGIC, -SPC_EBAD_VERSION, -SPC_EBAD_WIDTHS,
 * -SPC_ETRUNCATED, -SPC_EMISSING_FIELD, -SPC_EBAD_OFFSET, -EINVAL (info NULL, or data
 * NULL with len > 0). */
int spc_packet_parse(const void *data, size_t len, struct spc_packet_info *info);

/* An item of a decoded heap. For immediates, data points to the heap_address_bits/8
 * value bytes (big-endian, as on the wire; owned by the heap) and value holds them as an
 * integer. For addressed items, data/len are the item's bytes in the heap payload, value
 * its address; the length runs to the next addressed pointer's address (NULL pointers
 * included) or, for the last one, to heap_size (to the end of the data received when the
 * size was never announced). */
struct spc_decoded_item {
    uint64_t id;
    bool immediate;
    uint64_t value;
    const uint8_t *data;
    size_t len;
};

/* A reassembled heap. Owned by the caller after spc_decoder_pop; free with
 * spc_decoded_heap_free. Item pointers are taken from the packets in heap-offset order,
 * and a pointer identical to one already taken is dropped (repeat_pointers sends the list
 * in every packet). Bytes that never arrived read as zero. */
struct spc_decoded_heap {
    uint64_t cnt;
    struct spc_flavour flavour; /* heap_address_bits from the packets; bug_compat from the config */
    bool complete;              /* every payload byte arrived */
    uint64_t heap_size;         /* UINT64_MAX if never announced */
    uint64_t received;          /* payload bytes received */
    size_t n_packets;
    size_t n_items;             /* user items: special IDs 1-4 and NULL pointers left out */
    struct spc_decoded_item *items; /* in pointer order; NULL with n_items 0 when an
                                       incomplete heap's pointers do not resolve */
    uint8_t *payload;           /* heap_size bytes, or received-extent bytes if unknown */
    bool has_start;             /* a stream control item with value 0 */
    bool has_stop;              /* a stream control item with value 2 */
};

/* Frees a heap from spc_decoder_pop (only those). NULL is a no-op. */
void spc_decoded_heap_free(struct spc_decoded_heap *heap);

struct spc_decoder_config {
    uint32_t struct_size;   /* sizeof(struct spc_decoder_config); fields beyond it take their defaults */
    size_t max_heap_size;   /* heaps announcing more are refused (default 64 MiB) */
    size_t max_live_heaps;  /* incomplete heaps kept; the oldest is evicted (default 16) */
    unsigned bug_compat;    /* used when parsing descriptors */
};
/* Defaults as above. */
#define SPC_DECODER_DEFAULT_MAX_HEAP_SIZE (64u << 20)
#define SPC_DECODER_DEFAULT_MAX_LIVE_HEAPS 16u
#define SPC_DECODER_CONFIG_DEFAULT                                                     \
    ((struct spc_decoder_config){.struct_size = sizeof(struct spc_decoder_config),       \
                                 .max_heap_size = SPC_DECODER_DEFAULT_MAX_HEAP_SIZE,     \
                                 .max_live_heaps = SPC_DECODER_DEFAULT_MAX_LIVE_HEAPS,   \
                                 .bug_compat = 0})

struct spc_decoder;

/* cfg NULL = defaults. The caller destroys the decoder. Errors: -EINVAL (max_heap_size
 * or max_live_heaps 0, bug_compat above 7), -ENOMEM.
 * Memory: each live heap holds at most max_heap_size payload bytes plus at most
 * max_heap_size + 64 KiB of bookkeeping (packet records, item pointers); heaps ready but
 * not popped are the caller's to drain. */
int spc_decoder_create(struct spc_decoder **out, const struct spc_decoder_config *cfg);
void spc_decoder_destroy(struct spc_decoder *dec);

/* Adds one packet (data is borrowed for the call; its bytes are copied). *consumed, if
 * not NULL, receives the packet's size so a byte stream can be walked: also when the
 * packet parsed but was refused, and 0 when it did not parse. Heaps are keyed by heap
 * cnt; packets may come in any order, interleaved with other heaps. A heap completes
 * when heap_size bytes have arrived; it, or an incomplete one evicted for room (the
 * oldest, when a packet would start heap max_live_heaps + 1), becomes available to pop.
 * A packet for a heap already delivered starts a new heap. A packet repeating the offset
 * and length of one received is a duplicate: accepted (returns 0) but ignored, except
 * that a heap size it announces is learned.
 * Errors: those of spc_packet_parse; -SPC_EHEAP_LIMIT (heap size, offset + length, or the
 * heap's bookkeeping over the limits); -SPC_EINCONSISTENT (heap size or flavour differs
 * from earlier packets of the heap, a late heap size smaller than data received, or a
 * payload range overlapping a different one received); -SPC_EBAD_OFFSET (no heap size
 * item, and the range passes the size earlier packets announced); -SPC_EBAD_POINTER (an
 * addressed pointer beyond the heap size; or, for the packet that would complete the heap,
 * pointers that do not resolve: addresses decreasing in pointer order, or beyond a size
 * announced after them. That heap then stays incomplete and is delivered by eviction or
 * flush with complete = false and no items); -ENOMEM; -EINVAL.
 * A rejected packet leaves the decoder as it was (bar the bad_packets count). */
int spc_decoder_add_packet(struct spc_decoder *dec, const void *data, size_t len, size_t *consumed);

/* Feeds a concatenated packet stream (as the bytes transport produces). Stops at the
 * first bad packet and returns its error; *consumed (if not NULL) says how far it got
 * (the offset of the bad packet; len when all were accepted). */
int spc_decoder_add_stream(struct spc_decoder *dec, const void *data, size_t len, size_t *consumed);

/* Takes the next finished heap (in the order heaps completed or were evicted/flushed)
 * into *out. Returns 1 with a heap, 0 (and *out NULL) when none is ready, -EINVAL. */
int spc_decoder_pop(struct spc_decoder *dec, struct spc_decoded_heap **out);

/* Moves every incomplete heap to the ready list (complete = false), oldest first. */
void spc_decoder_flush(struct spc_decoder *dec);

/* Counters since creation. */
/* Sized: the caller sets struct_size (SPC_DECODER_STATS_INIT) and gets the counters that
 * fit in it. */
struct spc_decoder_stats {
    uint32_t struct_size;
    uint64_t packets;     /* accepted, duplicates included */
    uint64_t bad_packets; /* refused with an error */
    uint64_t heaps_complete;
    uint64_t heaps_incomplete;
};
#define SPC_DECODER_STATS_INIT ((struct spc_decoder_stats){.struct_size = sizeof(struct spc_decoder_stats)})
void spc_decoder_stats(const struct spc_decoder *dec, struct spc_decoder_stats *out);

/* A descriptor parsed back from a decoded item 5. Owned by the caller; free with
 * spc_descriptor_info_free. Strings are NUL-terminated copies. */
struct spc_descriptor_info {
    uint64_t id;
    char *name;
    char *description;
    int64_t *shape;            /* SPC_DIM_VARIABLE for variable dimensions */
    size_t n_dims;
    struct spc_format_field *format;
    size_t n_format;
    char *dtype_header;        /* the numpy header text, NULL if absent */
    char *dtype;               /* the descr parsed out of it: "<u2" or "[('a', '<u2'), ...]"; NULL if absent */
    bool fortran_order;
    int64_t *dtype_shape;      /* shape tuple parsed out of the header */
    size_t dtype_n_dims;
};

/* Parses a descriptor item (from a heap decoded in flavour f; only f->bug_compat is used,
 * NULL = 0). The item's value must be a whole one-packet heap (offset 0, payload = heap
 * size); its own header gives the field widths: format entries 1 + (8 - HAB/8) bytes,
 * shape entries 1 + HAB/8 bytes (4 and 8 under bug_compat 1), variable flag 1 (2 under
 * bug_compat 2). The ID (0x14) is required and must fit the flavour; name, description
 * default to "", shape and format to empty. The dtype header must hold exactly the keys
 * descr, fortran_order and shape. Under bug_compat 4, dtype has '<' and '>' swapped back
 * (the data's real byte order); dtype_header stays the wire text.
 * Errors: -SPC_EBAD_DESCRIPTOR (anything malformed, an immediate item, a duplicated field,
 * a zero-bit format field), -ENOMEM, -EINVAL (item or out NULL). */
int spc_descriptor_parse(const struct spc_decoded_item *item, const struct spc_flavour *f,
                         struct spc_descriptor_info **out);
void spc_descriptor_info_free(struct spc_descriptor_info *info);

#ifdef __cplusplus
}
#endif

#endif
