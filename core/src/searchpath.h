/* Core-internal: the plugin search path and module file names (searchpath.c). */
#ifndef SPCI_SEARCHPATH_H
#define SPCI_SEARCHPATH_H

#include <stddef.h>

/* A transport called <name> is the module file SPCI_MODULE_PREFIX <name> SPCI_MODULE_SUFFIX. */
#define SPCI_MODULE_PREFIX "speadcast-"
#define SPCI_MODULE_SUFFIX ".so"
#define SPCI_MAX_NAME_LEN 64

/* 0 when name is a valid transport name ([A-Za-z0-9_-]{1,64}), else -EINVAL. */
int spci_transport_name_check(const char *name);

/* Appends a copy of s to the NULL-terminated *v of *n strings unless it is there already.
 * Errors: -ENOMEM. */
int spci_strv_push(char ***v, size_t *n, const char *s);

/* Appends to *names (no duplicates) the transport names of the module files in dir,
 * sorted; an unreadable dir adds nothing. */
void spci_plugin_scan_dir(const char *dir, char ***names, size_t *n);

#endif
