/* The SPEAD wire format: flavours, heaps, descriptors and the packetizer.
 *
 * Thread rules: a heap may be read by any number of threads at once (packetized,
 * validated, sent on several streams), but must not be modified while it is being
 * read or while a send of it has not completed. Packetizers are per-thread objects.
 */
#ifndef SPEADCAST_WIRE_H
#define SPEADCAST_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "speadcast/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- flavours */

/* bug_compat flags, for interoperating with PySPEAD 0.5.2. */
#define SPC_BUG_COMPAT_DESCRIPTOR_WIDTHS 1u /* format entries 4 bytes, shape entries 8 bytes */
#define SPC_BUG_COMPAT_SHAPE_BIT_1       2u /* variable dimension flagged with 2, not 1 */
#define SPC_BUG_COMPAT_SWAP_ENDIAN       4u /* dtype header advertises the opposite byte order */
#define SPC_BUG_COMPAT_PYSPEAD_0_5_2     7u

/* A flavour: SPEAD version 4, 64-bit item pointers, heap_address_bits (a multiple of 8
 * in 8..56) and a bug_compat mask. SPC_FLAVOUR_DEFAULT is SPEAD-64-40, bug_compat 0. */
struct spc_flavour {
    unsigned heap_address_bits;
    unsigned bug_compat;
};
#define SPC_FLAVOUR_DEFAULT_HEAP_ADDRESS_BITS 40u
#define SPC_FLAVOUR_DEFAULT                                                            \
    ((struct spc_flavour){.heap_address_bits = SPC_FLAVOUR_DEFAULT_HEAP_ADDRESS_BITS, .bug_compat = 0})

/* Fills *out after checking the arguments. Errors: -SPC_EFLAVOUR. */
int spc_flavour_init(struct spc_flavour *out, unsigned heap_address_bits, unsigned bug_compat);
/* 0 if *f is a valid flavour, else -SPC_EFLAVOUR. */
int spc_flavour_check(const struct spc_flavour *f);
/* Largest item ID the flavour can carry: 2^(63 - heap_address_bits) - 1. */
uint64_t spc_flavour_max_id(const struct spc_flavour *f);
/* Largest immediate value / heap address / heap cnt: 2^heap_address_bits - 1. */
uint64_t spc_flavour_max_value(const struct spc_flavour *f);

/* Reserved item IDs. */
enum {
    SPC_ID_NULL = 0x00,
    SPC_ID_HEAP_CNT = 0x01,
    SPC_ID_HEAP_SIZE = 0x02,
    SPC_ID_HEAP_OFFSET = 0x03,
    SPC_ID_PAYLOAD_LENGTH = 0x04,
    SPC_ID_DESCRIPTOR = 0x05,
    SPC_ID_STREAM_CTRL = 0x06,
    SPC_ID_DESCRIPTOR_NAME = 0x10,
    SPC_ID_DESCRIPTOR_DESCRIPTION = 0x11,
    SPC_ID_DESCRIPTOR_SHAPE = 0x12,
    SPC_ID_DESCRIPTOR_FORMAT = 0x13,
    SPC_ID_DESCRIPTOR_ID = 0x14,
    SPC_ID_DESCRIPTOR_DTYPE = 0x15
};

/* Stream control values (item 0x06). */
enum { SPC_CTRL_START = 0, SPC_CTRL_DESCRIPTOR_REISSUE = 1, SPC_CTRL_STOP = 2, SPC_CTRL_DESCRIPTOR_UPDATE = 3 };

/* The smallest max_packet_size accepted. */
#define SPC_MIN_PACKET_SIZE 56
/* Bytes every packet starts with: header plus heap cnt, size, offset, payload length. */
#define SPC_PACKET_PREFIX 40

/* ------------------------------------------------------------- descriptors */

/* One field of a format list: type character ('u', 'i', 'f', 'c', 'b', ...) and bits. */
struct spc_format_field {
    char type;
    uint32_t bits;
};

/* A variable dimension in a shape. */
#define SPC_DIM_VARIABLE (-1)

/* A descriptor, as given by the caller. Exactly one of format (n_format > 0) and dtype
 * (non-NULL) must be set. dtype is the numpy descr: either a plain type string such as
 * "<u2" (written quoted in the header) or the Python repr of a structured descr, starting
 * with '[' (written as is), e.g. "[('a', '<u2'), ('b', '>f4')]". Shape entries are sizes
 * >= 0 or SPC_DIM_VARIABLE (at most one; none with a dtype). fortran_order requires a
 * dtype. All pointers are borrowed for the call only: the descriptor is encoded at once. */
struct spc_descriptor {
    uint64_t id;
    const char *name;        /* NULL = "" */
    const char *description; /* NULL = "" */
    const int64_t *shape;
    size_t n_dims;
    const struct spc_format_field *format;
    size_t n_format;
    const char *dtype;
    bool fortran_order;
};

/* Checks a descriptor against a flavour. Errors: -SPC_EITEM_ID (0 or too large),
 * -SPC_EVARIABLE_DIMS, -SPC_EFORMAT_DTYPE, -SPC_EDESCRIPTOR (Fortran order with a format,
 * zero-bit or over-wide field, negative size). */
int spc_descriptor_check(const struct spc_descriptor *d, const struct spc_flavour *f);

/* Writes the numpy dtype header text ("{'descr': '<u2', 'fortran_order': False,
 * 'shape': (2, 3)}") into buf (NUL-terminated, truncated to cap). swap_endian swaps
 * '<' and '>' in the descr (bug_compat 4). Returns the length it needs, excluding the NUL. */
size_t spc_dtype_header(const struct spc_descriptor *d, bool swap_endian, char *buf, size_t cap);

/* Encodes a descriptor's value (a one-packet SPEAD heap, heap cnt 1) into a newly
 * allocated buffer; the caller frees *out with free(). */
int spc_descriptor_encode(const struct spc_descriptor *d, const struct spc_flavour *f,
                          uint8_t **out, size_t *out_len);

/* ------------------------------------------------------------------ heaps */

struct spc_heap;

/* Creates an empty heap in a flavour (NULL = default). The caller destroys it. */
int spc_heap_create(struct spc_heap **out, const struct spc_flavour *flavour);
/* Frees the heap, its descriptor encodings and any adopted buffers. NULL is a no-op. */
void spc_heap_destroy(struct spc_heap *heap);
/* Removes every item and adopted buffer; keeps the flavour and repeat_pointers. */
void spc_heap_clear(struct spc_heap *heap);

const struct spc_flavour *spc_heap_flavour(const struct spc_heap *heap);

/* Adds an item whose value is len bytes at data. The memory is referenced, never
 * copied: it is borrowed until the heap is destroyed or cleared, and what it holds when
 * the heap is packetized is what is sent. If allow_immediate and len <= HAB/8, the item
 * is sent as an immediate (bytes right-aligned in the pointer). len 0 is allowed.
 * Errors: -SPC_EITEM_ID, -SPC_EHEAP_TOO_LARGE, -ENOMEM, -EINVAL (data NULL with len > 0). */
int spc_heap_add_item(struct spc_heap *heap, uint64_t id, const void *data, size_t len,
                      bool allow_immediate);
/* Adds an inline immediate integer item. Errors: -SPC_EITEM_ID, -SPC_EIMMEDIATE_WIDTH. */
int spc_heap_add_inline(struct spc_heap *heap, uint64_t id, uint64_t value);
/* Encodes the descriptor and adds it as item 5 (always addressed; encoding owned by the
 * heap). Errors: those of spc_descriptor_check, -SPC_EHEAP_TOO_LARGE, -ENOMEM. */
int spc_heap_add_descriptor(struct spc_heap *heap, const struct spc_descriptor *d);
/* Stream control items: start (0) and end/stop (2). */
int spc_heap_add_start(struct spc_heap *heap);
int spc_heap_add_end(struct spc_heap *heap);
/* Every packet carries the whole pointer list (off by default). */
void spc_heap_set_repeat_pointers(struct spc_heap *heap, bool repeat);
bool spc_heap_repeat_pointers(const struct spc_heap *heap);
/* Passes ownership of buf to the heap: free_fn(buf) runs when the heap is destroyed or
 * cleared (free_fn NULL = free). Typically buf is then referenced by add_item. */
int spc_heap_adopt(struct spc_heap *heap, void *buf, void (*free_fn)(void *));

size_t spc_heap_n_items(const struct spc_heap *heap);
/* Sum of the lengths of the addressed items (the payload before padding). */
uint64_t spc_heap_payload_size(const struct spc_heap *heap);

/* -------------------------------------------- payload laid out as its packets
 *
 * A reserved item's bytes are held by the heap, in a buffer laid out the way the heap's
 * packets carry them at one max_packet_size: where a packet's whole payload is reserved
 * bytes, they lie side by side with room for the packet's header just before them. A
 * stream then writes the header into that room and hands the packet to its transport as
 * one piece (udp: a whole GSO message as one piece), instead of a header piece and
 * payload pieces; the bytes on the wire are the same. Lay out after adding the heap's
 * other items: an item added later (or a stream with another max_packet_size) moves the
 * packets' cuts, which is still sent correctly but in pieces (spc_heap_lay_out again, or
 * ask spc_heap_packets_in_place). A stream writes headers in place for one send of a
 * heap at a time; a send of the same heap while one is in flight gathers pieces.
 *
 * The reserved bytes are zero until written; offsets are heap payload offsets (the item's
 * address is spc_heap_payload_size() just before it is reserved). Pointers and pieces
 * handed out stay valid until the heap is laid out again, cleared or destroyed. Changing
 * a heap (adding items, laying out) while it is queued on a stream is not allowed, as for
 * any heap. */

/* Adds an addressed item of len bytes held by the heap and lays the heap out for
 * max_packet_size (as spc_heap_lay_out). Errors: -SPC_EITEM_ID, -SPC_EHEAP_TOO_LARGE,
 * those of spc_heap_validate for max_packet_size, -ENOMEM; on an error the heap is as it
 * was. */
int spc_heap_reserve_item(struct spc_heap *heap, uint64_t id, size_t len, size_t max_packet_size);
/* Lays the reserved items out again for the heap as it is now and max_packet_size,
 * keeping their bytes (a no-op without reserved items). Errors: those of
 * spc_heap_validate, -ENOMEM (the old layout is kept). */
int spc_heap_lay_out(struct spc_heap *heap, size_t max_packet_size);
/* How many of the heap's packets at max_packet_size would go out in place (0 without
 * reserved items or for a size the heap cannot be sent with). */
size_t spc_heap_packets_in_place(const struct spc_heap *heap, size_t max_packet_size);
/* The reserved bytes from payload offset on that are contiguous in memory: a pointer to
 * them, and their count in *len (up to the end of the packet that carries them). NULL
 * with *len 0 when offset is not a reserved byte. For filling the value in place: walk
 * offset forward by *len. */
void *spc_heap_payload_span(struct spc_heap *heap, uint64_t offset, size_t *len);
/* Copies len bytes to/from the reserved bytes at payload offset. Errors: -ERANGE (a byte
 * of the range is not reserved; nothing copied), -EINVAL (NULL buffer with len > 0). */
int spc_heap_payload_write(struct spc_heap *heap, uint64_t offset, const void *src, size_t len);
int spc_heap_payload_read(const struct spc_heap *heap, uint64_t offset, void *dst, size_t len);

/* Checks that the heap can be sent with max_packet_size (rounded down to a multiple of
 * 8) and heap cnt: -SPC_EPACKET_SIZE, -SPC_EREPEAT_POINTERS, -SPC_ETOO_MANY_POINTERS,
 * -SPC_EHEAP_TOO_LARGE (payload plus padding), -SPC_EHEAP_CNT. */
int spc_heap_validate(const struct spc_heap *heap, uint64_t cnt, size_t max_packet_size);

/* ------------------------------------------------------------- packetizer */

/* Maximum scatter/gather pieces in one packet: the header/pointer scratch piece plus
 * payload pieces. A packet that would need more has its payload copied to scratch. */
#define SPC_PACKET_MAX_IOV 8

/* One packet as scatter/gather pieces. iov[0] is the scratch area (header and item
 * pointers); the rest reference item memory or static zero padding. A packet that goes
 * out in place (spc_packetizer.in_place) is one piece, header and payload, in the heap's
 * payload layout. */
struct spc_packet {
    struct iovec iov[SPC_PACKET_MAX_IOV];
    unsigned n_iov;
    size_t size; /* total bytes */
};

/* Walks a heap's packets. Caller-allocated; no allocation happens in init or next.
 * The heap and its item memory are borrowed until the walk ends. Fields are private. */
struct spc_packetizer {
    const struct spc_heap *heap;
    uint64_t cnt;
    size_t mps;          /* rounded max_packet_size */
    size_t max_ptrs;     /* user item pointers per packet */
    uint64_t payload;    /* P, padding included */
    uint64_t offset;     /* payload bytes emitted so far */
    size_t n_ptrs;       /* user pointers including the trailing NULL, if any */
    size_t next_ptr;     /* next user pointer to emit */
    size_t seg;          /* current addressed item index while gathering */
    uint64_t seg_off;    /* bytes of that item already emitted */
    uint64_t real;       /* P without padding */
    bool null_ptr;       /* a NULL pointer (address = real) ends the list */
    size_t piece;        /* cursor into the heap's payload layout */
    bool in_place;       /* the one field a caller may set (false after init): packets
                            wholly in the heap's payload layout are written there (see
                            spc_packetizer_next and spc_heap_reserve_item) */
};

/* Bytes of scratch each packet needs for max_packet_size: enough for the header,
 * pointers and (in the rare copy case) payload. Equals the rounded packet size. */
size_t spc_packet_scratch_size(size_t max_packet_size);

/* Starts a walk. Errors: those of spc_heap_validate. */
int spc_packetizer_init(struct spc_packetizer *pz, const struct spc_heap *heap, uint64_t cnt,
                        size_t max_packet_size);
/* Number of packets the walk produces in all. */
size_t spc_packetizer_count(const struct spc_packetizer *pz);
bool spc_packetizer_done(const struct spc_packetizer *pz);
/* Produces the next packet into *pkt, using scratch (spc_packet_scratch_size bytes, which
 * must stay untouched until the packet has been sent). With in_place set, a packet wholly
 * in the heap's payload layout has its header written there instead and uses no scratch;
 * set it only while no other walk of the heap does (two would write the same header
 * room). Returns 1 with a packet, 0 when the walk is over. */
int spc_packetizer_next(struct spc_packetizer *pz, uint8_t *scratch, struct spc_packet *pkt);
/* Total bytes of all packets of a heap (49 for an empty heap), or a negative error. */
int64_t spc_heap_wire_size(const struct spc_heap *heap, uint64_t cnt, size_t max_packet_size);

/* Copies a packet's bytes contiguously into dst. Returns pkt->size, or -ENOSPC when
 * cap is smaller (nothing written). */
int64_t spc_packet_write(const struct spc_packet *pkt, void *dst, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
