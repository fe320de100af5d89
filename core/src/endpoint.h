/* Core-internal: endpoint parsing for option tables (endpoint.c). */
#ifndef SPCI_ENDPOINT_H
#define SPCI_ENDPOINT_H

#include <stddef.h>

#include "cfgjson.h"

#define SPCI_HOST_MAX 255 /* bytes of a host name or address (also in the patterns) */

/* The "host:port" pattern of the JSON Schema; spci_endpoint_parse accepts exactly this
 * language (ctest config_corpus_jsonschema runs both over the same documents). */
#define SPCI_PORT_PATTERN                                                              \
    "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})$"
#define SPCI_ENDPOINT_PATTERN "^(\\[[0-9A-Fa-f:.]{1,255}\\]|[A-Za-z0-9._-]{1,255}):" SPCI_PORT_PATTERN
/* The object form's host (spci_host_check): an IPv6 address has a ':', a name has none. */
#define SPCI_HOST_PATTERN "^([0-9A-Fa-f.]*:[0-9A-Fa-f:.]*|[A-Za-z0-9._-]+)$"
/* spci_is_dotted_quad, and "a.b.c.d:port", for SPC_OPT_IPV4 options. */
#define SPCI_OCTET "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
#define SPCI_IPV4_RE SPCI_OCTET "(\\." SPCI_OCTET "){3}"
#define SPCI_IPV4_PATTERN "^" SPCI_IPV4_RE "$"
#define SPCI_IPV4_ENDPOINT_PATTERN "^" SPCI_IPV4_RE ":" SPCI_PORT_PATTERN

/* A dotted-quad IPv4 address, each part 0..255 without leading zeros (SPCI_IPV4_PATTERN). */
int spci_is_dotted_quad(const char *s);

/* Parses "host:port" / "[v6addr]:port" (port 1..65535) into host (NUL-terminated, brackets
 * removed) and *port. path names the value in messages. Errors: -SPC_ECONFIG. */
int spci_endpoint_parse(const char *s, const char *path, char *host, size_t hostlen,
                        unsigned *port, char *err, size_t errlen);
/* Parses a JSON endpoint: the string form (host written into buf) or {"host", "port"}
 * (*host_out then borrowed from v). Errors: -SPC_ECONFIG. */
int spci_endpoint_from_json(const json_t *v, const char *path, const char **host_out,
                            unsigned *port_out, char *buf, size_t buflen, char *err, size_t errlen);

#endif
