/* Shared helpers of the in-tree transport plugins (libfabric's prov/util): a static
 * library linked into each plugin, never part of the ABI and never linked into the core.
 * Prefix spcu_. This header: name resolution and getaddrinfo's errors as speadcast
 * codes, and endpoints as text.
 */
#ifndef SPCU_NET_H
#define SPCU_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "speadcast/transport.h"

/* getaddrinfo's failure rc as a code: EAI_AGAIN -EAGAIN, EAI_MEMORY -ENOMEM, EAI_SYSTEM
 * -errno (-EIO when errno is 0), anything else (unknown name, no address) -SPC_ECONFIG.
 * saved_errno is errno as getaddrinfo left it. */
int spcu_gai_code(int rc, int saved_errno);
/* Its text: strerror(saved_errno) for EAI_SYSTEM, else gai_strerror(rc). Static storage. */
const char *spcu_gai_text(int rc, int saved_errno);

/* Resolves host and port (0 allowed) for socktype with extra ai_flags (AI_NUMERICSERV is
 * always set) to the first IPv4 or IPv6 address of family, into *out / *out_len.
 * - found_other NULL: getaddrinfo is asked for family itself (AF_UNSPEC = either).
 * - found_other not NULL: it is asked for any family and *found_other tells whether the
 *   name resolved, but only to another family than the one wanted (then -SPC_ECONFIG).
 * On failure *why (if not NULL) says why: getaddrinfo's text, or "no IPv4 or IPv6
 * address". Errors: those of spcu_gai_code, -SPC_ECONFIG. */
int spcu_resolve(const char *host, unsigned port, int family, int socktype, int flags,
                 struct sockaddr_storage *out, socklen_t *out_len, bool *found_other,
                 const char **why);

/* Resolves host to an IPv4 address (out in network byte order), for transports that
 * build IPv4 frames themselves. Errors and *why as spcu_resolve. */
int spcu_resolve_ipv4(const char *host, uint8_t out[4], const char **why);

/* "host:port", or "[host]:port" for an IPv6 literal. */
void spcu_endpoint_text(const struct spc_endpoint *ep, char *buf, size_t len);

#endif
