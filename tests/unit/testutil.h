/* Helpers shared by the Criterion suites. */
#ifndef SPC_TESTUTIL_H
#define SPC_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Decodes hex text (whitespace ignored) into a malloc'd buffer; NULL on bad input. */
uint8_t *tu_hex_decode(const char *hex, size_t *len);
/* Reads a whole file into a malloc'd NUL-terminated buffer; NULL on failure. */
char *tu_read_file(const char *path, size_t *len);
/* Lower-case hex of a buffer, malloc'd, for readable assertion messages. */
char *tu_hex_encode(const uint8_t *data, size_t len);
/* A UDP socket bound on 127.0.0.1 with a port of its own (in *port) and a receive buffer
 * of rcvbuf bytes (as far as the OS grants): the fd, or -errno. */
int tu_udp_loopback(unsigned *port, int rcvbuf);
/* The error detail of an object (its spc_<object>_last_error), in one of a few
 * rotating per-thread buffers, for assertion messages. */
struct spc_item;
struct spc_item_group;
struct spc_heap_generator;
struct spc_transport_handle;
const char *tu_item_err(const struct spc_item *item);
const char *tu_group_err(const struct spc_item_group *group);
const char *tu_gen_err(const struct spc_heap_generator *gen);
const char *tu_handle_err(struct spc_transport_handle *h);
/* Deterministic PRNG (xorshift64*) for property tests. */
uint64_t tu_rand(uint64_t *state);

#endif
