/* Core-internal: JSON helpers shared by the configuration layer (cfgjson.c, options.c,
 * endpoint.c, stream_config.c, config.c, schema.c: the only core files that include
 * jansson.h). Every config error message starts with the JSON path of what is wrong. */
#ifndef SPCI_CFGJSON_H
#define SPCI_CFGJSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "log_internal.h"

/* Longest JSON path kept for messages (a longer one is cut with "..."). */
#define SPCI_PATH_LEN 256

/* Writes the message into (err, errlen) (see speadcast.h) and returns -SPC_ECONFIG. */
int spci_cfg_fail(char *err, size_t errlen, const char *fmt, ...) SPCI_PRINTF(3, 4);
/* "an object", "a string", ... for "expected X, got Y" messages. */
const char *spci_json_type_name(const json_t *v);
/* Shortest text that reads back as the same double. */
void spci_fmt_double(double d, char *buf, size_t len);
/* "path.key: unknown key" with the closest of names as a hint, or the list of them.
 * Returns -SPC_ECONFIG. */
int spci_unknown_key(char *err, size_t errlen, const char *path, const char *key,
                     const char *const *names, size_t n);
/* After json_unpack_ex refused obj under a strict format over names: the first key
 * outside names with a hint, or jansson's text. Returns -SPC_ECONFIG. */
int spci_strict_unpack_error(char *err, size_t errlen, const char *path, const json_t *obj,
                             const json_error_t *jerr, const char *const *names, size_t n);
/* out (SPCI_PATH_LEN bytes) = path.key, or key when path is "". */
void spci_path_join(char *out, const char *path, const char *key);
/* An integer, or a real without fraction (JSON Schema's integer). 0 on success. */
int spci_json_integral(const json_t *v, int64_t *out);
/* Prints j (consumed; NULL = -ENOMEM) indented, with a final newline, into a malloc'd
 * *out. Errors: -ENOMEM. */
int spci_json_dump(json_t *j, char **out);

#endif
