/* The transport catalogue: where plugins are searched for, which are found, and the
 * JSON Schema of each transport's options (like libfabric's fi_info / fi_getinfo).
 * Every function here is thread-safe (loading runs under one lock).
 */
#ifndef SPEADCAST_CATALOGUE_H
#define SPEADCAST_CATALOGUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "speadcast/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Loading: a transport name (letters, digits, '_' and '-') is first looked up among the
 * built-in transports ("bytes"), then as the file speadcast-<name>.so in each directory
 * of, in order: the config's plugin_path; the SPEADCAST_PLUGIN_PATH environment
 * variable (':'-separated); the speadcast/plugins directory beside the loaded
 * libspeadcast; the compiled-in plugin directory (<prefix>/<libdir>/speadcast/plugins).
 * The first file found is loaded; a broken one is an error, not skipped. A loaded plugin
 * stays resident until the process exits. The error text names every file tried, why
 * each failed, and the transports that are available. */

/* The directories searched, in order, for this plugin_path (NULL-terminated or NULL),
 * without duplicates. *out is a NULL-terminated array; free it with spc_strv_free. */
int spc_plugin_dirs(const char *const *plugin_path, char ***out);
void spc_strv_free(char **strv);

/* One transport found by spc_transport_list. Strings are owned by the list. */
struct spc_transport_info {
    char *name;          /* transport name (from the file name when it failed to load) */
    char *path;          /* module file, NULL for a built-in */
    char *version;       /* plugin version, NULL if it failed to load */
    char *description;   /* NULL if it failed to load */
    char *message;       /* why it failed or is not used; NULL when status is 0 */
    int status;          /* 0 loaded; -SPC_EPLUGIN broken; -EEXIST shadowed by an earlier one;
                            -ENOENT skipped as the loader skips it (dangling link) */
    unsigned abi_major;  /* ABI of the entry point found; 0 if none */
    unsigned abi_minor;
    bool builtin;
    uint32_t caps;       /* SPC_TRANSPORT_CAP_* (transport.h) */
    uint32_t max_substreams;
};

/* Lists every built-in transport, then every speadcast-*.so in the search directories in
 * search order, loading each to report its result (those that load stay resident). A
 * file whose name was already found earlier is listed with status -EEXIST. The caller
 * frees the list with spc_transport_list_free. Errors: -ENOMEM. */
int spc_transport_list(const char *const *plugin_path, struct spc_transport_info **out,
                       size_t *n);
void spc_transport_list_free(struct spc_transport_info *list, size_t n);

/* JSON Schema of a transport's "options" object, printed from its option table (the text
 * of schemas/transport/<name>.schema.json). Loads the transport. The caller frees *out
 * with free(). Errors: -SPC_EPLUGIN (detail in err), -ENOMEM. */
int spc_transport_schema(const char *name, const char *const *plugin_path, char **out,
                         char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
