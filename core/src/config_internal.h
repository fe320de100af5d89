/* Core-internal: what an opened transport needs of its config (config.c). */
#ifndef SPCI_CONFIG_INTERNAL_H
#define SPCI_CONFIG_INTERNAL_H

#include <stddef.h>

#include "speadcast/config.h"

struct spci_plugin;
struct spci_options;

/* The resolved transport of a config (never NULL for a config that was created). */
const struct spci_plugin *spci_config_plugin(const struct spc_config *cfg);

/* Builds the typed options for cfg's transport (defaults, then the config's values),
 * checking required options and list lengths. *opts_out is NULL when the transport
 * declares no options struct. Free with spci_options_free (options.h). */
int spci_options_build(const struct spc_config *cfg, struct spci_options **out,
                       void **opts_out, char *err, size_t errlen);

#endif
