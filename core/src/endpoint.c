/* Endpoints in a config: "host:port" / "[v6]:port" text or {"host": ..., "port": ...},
 * parsed by exactly the rules of SPCI_ENDPOINT_PATTERN (endpoint.h), which the JSON Schema
 * prints. */
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "speadcast/error.h"

/* A host as the string form allows it (SPCI_ENDPOINT_PATTERN / SPCI_HOST_PATTERN): an
 * IPv6 address (hex digits, ':' and '.'; bracketed in the string form) or a name of
 * [A-Za-z0-9._-], at most SPCI_HOST_MAX bytes. what is the value as written. */
static int host_check(const char *h, size_t len, int v6, const char *path, const char *what,
                      char *err, size_t errlen)
{
    if (len == 0)
        return spci_cfg_fail(err, errlen, "%s: \"%s\" has an empty host", path, what);
    if (len > SPCI_HOST_MAX)
        return spci_cfg_fail(err, errlen, "%s: host name too long (%zu bytes, at most %d)", path, len,
                             SPCI_HOST_MAX);
    for (const char *p = h; p < h + len; p++) {
        if (v6 ? !!strchr("0123456789abcdefABCDEF:.", *p)
               : (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                     *p == '.' || *p == '-' || *p == '_')
            continue;
        if (v6)
            return spci_cfg_fail(err, errlen, "%s: \"%s\": '%c' cannot appear in an IPv6 address", path,
                                 what, *p);
        return spci_cfg_fail(err, errlen,
                             *p == ':' ? "%s: \"%s\": write an IPv6 address as \"[address]:port\""
                                       : "%s: \"%s\": '%c' cannot appear in a host name",
                             path, what, *p);
    }
    return 0;
}

int spci_is_dotted_quad(const char *s)
{
    for (int part = 0; part < 4; part++) {
        if (part && *s++ != '.')
            return 0;
        size_t nd = strspn(s, "0123456789");
        if (nd == 0 || nd > 3 || (nd > 1 && *s == '0') || strtoul(s, NULL, 10) > 255)
            return 0;
        s += nd;
    }
    return *s == '\0';
}

/* Parses "host:port" / "[v6]:port" with the same rules as the schema pattern. */
int spci_endpoint_parse(const char *s, const char *path, char *host, size_t hostlen,
                                 unsigned *port, char *err, size_t errlen)
{
    const char *h = s, *hend, *colon;
    if (*s == '[') {
        h = s + 1;
        hend = strchr(h, ']');
        if (!hend)
            return spci_cfg_fail(err, errlen, "%s: \"%s\" has no closing ']' after an IPv6 address", path, s);
        if (hend == h)
            return spci_cfg_fail(err, errlen, "%s: \"%s\" has an empty IPv6 address between '[' and ']'", path, s);
        if (host_check(h, (size_t)(hend - h), 1, path, s, err, errlen) < 0)
            return -SPC_ECONFIG;
        colon = hend + 1;
        if (*colon != ':')
            return spci_cfg_fail(err, errlen, "%s: \"%s\" needs \":port\" after the address", path, s);
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return spci_cfg_fail(err, errlen, "%s: \"%s\" is not \"host:port\"", path, s);
        hend = colon;
        if (host_check(h, (size_t)(hend - h), 0, path, s, err, errlen) < 0)
            return -SPC_ECONFIG;
    }
    const char *ps = colon + 1;
    size_t nd = strspn(ps, "0123456789");
    if (nd == 0 || ps[nd] != '\0' || nd > 5 || ps[0] == '0') {
        if (nd > 0 && ps[nd] == '\0' && ps[0] != '0' && nd > 5)
            return spci_cfg_fail(err, errlen, "%s: port %s is above 65535", path, ps);
        return spci_cfg_fail(err, errlen, "%s: \"%s\": port must be a decimal number from 1 to 65535", path, s);
    }
    unsigned long p = strtoul(ps, NULL, 10);
    if (p > 65535)
        return spci_cfg_fail(err, errlen, "%s: port %lu is above 65535", path, p);
    if ((size_t)(hend - h) >= hostlen)
        return spci_cfg_fail(err, errlen, "%s: host name too long", path);
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = '\0';
    *port = (unsigned)p;
    return 0;
}

int spci_endpoint_from_json(const json_t *v, const char *path, const char **host_out,
                          unsigned *port_out, char *buf, size_t buflen, char *err, size_t errlen)
{
    if (json_is_string(v)) {
        int rc = spci_endpoint_parse(json_string_value(v), path, buf, buflen, port_out, err, errlen);
        *host_out = buf;
        return rc;
    }
    if (!json_is_object(v))
        return spci_cfg_fail(err, errlen, "%s: expected \"host:port\" or {\"host\": ..., \"port\": ...}, got %s",
                    path, spci_json_type_name(v));
    static const char *const keys[] = {"host", "port"};
    char p[SPCI_PATH_LEN];
    json_t *jh = NULL, *jp = NULL;
    json_error_t jerr;
    if (json_unpack_ex((json_t *)v, &jerr, JSON_STRICT, "{s?o, s?o}", "host", &jh, "port", &jp) < 0)
        return spci_strict_unpack_error(err, errlen, path, v, &jerr, keys, 2);
    if (!jh) {
        spci_path_join(p, path, "host");
        return spci_cfg_fail(err, errlen, "%s: missing (required)", p);
    }
    if (!jp) {
        spci_path_join(p, path, "port");
        return spci_cfg_fail(err, errlen, "%s: missing (required)", p);
    }
    spci_path_join(p, path, "host");
    if (!json_is_string(jh))
        return spci_cfg_fail(err, errlen, "%s: expected a string, got %s", p, spci_json_type_name(jh));
    if (!*json_string_value(jh))
        return spci_cfg_fail(err, errlen, "%s: empty host", p);
    /* The object form holds an IPv6 address without brackets: a ':' tells it apart. */
    const char *hs = json_string_value(jh);
    if (strlen(hs) != json_string_length(jh))
        return spci_cfg_fail(err, errlen, "%s: string contains a NUL character", p);
    if (host_check(hs, strlen(hs), strchr(hs, ':') != NULL, p, hs, err, errlen) < 0)
        return -SPC_ECONFIG;
    spci_path_join(p, path, "port");
    int64_t port;
    if (spci_json_integral(jp, &port) < 0)
        return spci_cfg_fail(err, errlen, "%s: expected an integer, got %s", p, spci_json_type_name(jp));
    if (port < 1)
        return spci_cfg_fail(err, errlen, "%s: %lld is below 1", p, (long long)port);
    if (port > 65535)
        return spci_cfg_fail(err, errlen, "%s: %lld is above 65535", p, (long long)port);
    *host_out = json_string_value(jh);
    *port_out = (unsigned)port;
    return 0;
}

