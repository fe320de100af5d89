/* Core-internal: loaded transports (loader.c, the only file that includes ltdl.h). */
#ifndef SPCI_LOADER_H
#define SPCI_LOADER_H

#include <stddef.h>

#include "speadcast/transport.h"

/* A transport that loaded and passed every check. Lives until the process exits;
 * immutable after loading, so it may be read from any thread without a lock. */
struct spci_plugin {
    const struct spc_transport_descriptor *desc;
    struct spc_transport_ops ops; /* full table: optional gaps filled with -SPC_ENOTSUP stubs */
    char *name;
    char *path;                   /* module file; NULL for a built-in */
    size_t option_stride;         /* desc->options[0].struct_size, or 0 */
    struct spci_plugin *next;
};

/* Finds and loads (once) the transport called name along the search path for
 * plugin_path (NULL-terminated, may be NULL). On failure the text lists the files tried,
 * the reason for each, and the transports available. Thread-safe.
 * Errors: -SPC_EPLUGIN, -SPC_ECONFIG (invalid name), -ENOMEM. */
int spci_plugin_find(const char *name, const char *const *plugin_path,
                     const struct spci_plugin **out, char *err, size_t errlen);

#endif
