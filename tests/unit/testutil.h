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
/* Deterministic PRNG (xorshift64*) for property tests. */
uint64_t tu_rand(uint64_t *state);

#endif
