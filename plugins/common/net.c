/* Name resolution for the plugins (spcu_net.h). */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "spcu_net.h"

int spcu_gai_code(int rc, int saved_errno)
{
    switch (rc) {
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_SYSTEM:
        return saved_errno ? -saved_errno : -EIO;
    default:
        return -SPC_ECONFIG;
    }
}

const char *spcu_gai_text(int rc, int saved_errno)
{
    return rc == EAI_SYSTEM ? strerror(saved_errno) : gai_strerror(rc);
}

int spcu_resolve(const char *host, unsigned port, int family, int socktype, int flags,
                 struct sockaddr_storage *out, socklen_t *out_len, bool *found_other,
                 const char **why)
{
    struct addrinfo hints = {.ai_family = found_other ? AF_UNSPEC : family,
                             .ai_socktype = socktype, .ai_flags = AI_NUMERICSERV | flags};
    char port_s[8];
    snprintf(port_s, sizeof port_s, "%u", port);
    struct addrinfo *res = NULL;
    errno = 0;
    int rc = getaddrinfo(host, port_s, &hints, &res);
    if (rc != 0) {
        int e = errno;
        if (why)
            *why = spcu_gai_text(rc, e);
        return spcu_gai_code(rc, e);
    }
    bool other = false;
    int ret = -SPC_ECONFIG;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        if (family != AF_UNSPEC && ai->ai_family != family) {
            other = true;
            continue;
        }
        memcpy(out, ai->ai_addr, ai->ai_addrlen);
        *out_len = (socklen_t)ai->ai_addrlen;
        ret = 0;
        break;
    }
    freeaddrinfo(res);
    if (found_other)
        *found_other = other;
    if (ret < 0 && !other && why)
        *why = "no IPv4 or IPv6 address";
    return ret;
}

int spcu_resolve_ipv4(const char *host, uint8_t out[4], const char **why)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = spcu_resolve(host, 0, AF_INET, SOCK_DGRAM, 0, &ss, &len, NULL, why);
    if (rc == 0)
        memcpy(out, &((const struct sockaddr_in *)(const void *)&ss)->sin_addr, 4);
    return rc;
}

void spcu_endpoint_text(const struct spc_endpoint *ep, char *buf, size_t len)
{
    if (strchr(ep->host, ':'))
        snprintf(buf, len, "[%s]:%u", ep->host, (unsigned)ep->port);
    else
        snprintf(buf, len, "%s:%u", ep->host, (unsigned)ep->port);
}
