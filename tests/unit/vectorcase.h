/* Loader for the spead2 vector corpus (tests/vectors/spead2/CASE.json + CASE.hex; the
 * format is described in that directory's README.md), shared by the suites that replay it.
 * Everything a case holds is owned by the case and freed by vc_free. */
#ifndef SPC_VECTORCASE_H
#define SPC_VECTORCASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "speadcast/speadcast.h"

enum vc_kind { VC_DESCRIPTOR, VC_ITEM, VC_START, VC_END };

struct vc_entry {
    enum vc_kind kind;
    uint64_t id;
    char *name;
    /* VC_DESCRIPTOR */
    char *description;
    int64_t *shape; /* SPC_DIM_VARIABLE for a JSON null */
    size_t n_dims;
    char *dtype;    /* numpy descr as speadcast takes it ("<u2", "[('a', '<u2'), ...]"), or NULL */
    bool fortran_order;
    struct spc_format_field *format;
    size_t n_format;
    char *wire_numpy_header; /* NULL when the case has none (format descriptors) */
    /* VC_ITEM */
    uint8_t *raw;
    size_t raw_len;
    bool allow_immediate;
    bool immediate;
};

struct vc_heap {
    uint64_t cnt;
    bool repeat_pointers;
    struct vc_entry *entries;
    size_t n_entries;
};

struct vc_packet {
    uint8_t *data;
    size_t len;
};

struct vc_case {
    char *name;
    char *description;
    struct spc_flavour flavour;
    size_t max_packet_size;
    char *group_mode; /* NULL for "group": null, else "serial" or "round_robin" */
    struct vc_heap *heaps;
    size_t n_heaps;
    size_t expected_packets;
    uint64_t expected_bytes;
    struct vc_packet *packets; /* CASE.hex, one per line, in send order */
    size_t n_packets;
};

/* Case names listed in dir/MANIFEST, in file order, as a malloc'd array of malloc'd
 * strings (free with vc_free_names). Returns the count, or 0 with *names NULL on error. */
size_t vc_list(const char *dir, char ***names);
void vc_free_names(char **names, size_t n);

/* Loads dir/name.json and dir/name.hex. On failure returns a negative value and writes a
 * reason into err (errlen bytes). */
int vc_load(const char *dir, const char *name, struct vc_case **out, char *err, size_t errlen);
void vc_free(struct vc_case *c);

/* A descriptor view of a VC_DESCRIPTOR entry; pointers borrow from the entry. */
void vc_descriptor(const struct vc_entry *e, struct spc_descriptor *d);

/* Builds heap i of the case in the case's flavour: entries added in order, items by
 * reference to the case's raw bytes (the heap must be destroyed before the case).
 * Returns 0 or the first speadcast error. */
int vc_build_heap(const struct vc_case *c, size_t i, struct spc_heap **out);

/* A heap's packets as contiguous bytes, with what the packetizer predicted for them. */
struct vc_packets {
    struct vc_packet *p;
    size_t n;
    size_t predicted_count;  /* spc_packetizer_count */
    int64_t predicted_bytes; /* spc_heap_wire_size */
};

/* Walks the heap with spc_packetizer and writes each packet out with spc_packet_write.
 * Returns 0 or the speadcast error (out is then empty). */
int vc_packetize(const struct spc_heap *heap, uint64_t cnt, size_t max_packet_size, struct vc_packets *out);
void vc_packets_free(struct vc_packets *pk);

/* Compares two byte strings; on a difference prints (to stderr) a word-by-word hex diff
 * in 8-byte words headed by label, and returns false. */
bool vc_same_bytes(const char *label, const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len);

#endif
