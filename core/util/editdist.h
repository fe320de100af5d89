/* Internal helper shared by the core and the tools (static library speadcast_util,
 * linked into libspeadcast and speadcast_tools; never exported). */
#ifndef SPCI_EDITDIST_H
#define SPCI_EDITDIST_H

#include <stddef.h>

/* Levenshtein distance of two names of up to 64 bytes; (size_t)-1 for longer ones. For
 * "did you mean" hints. */
size_t spci_edit_distance(const char *a, const char *b);

#endif
