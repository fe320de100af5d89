/* Core-internal: the stream section as an option table (stream_config.c). */
#ifndef SPCI_STREAM_CONFIG_INTERNAL_H
#define SPCI_STREAM_CONFIG_INTERNAL_H

#include "cfgjson.h"
#include "options.h"
#include "speadcast/stream_config.h"

/* The section's option table (static storage), for the JSON Schema. */
const struct spci_table *spci_stream_section_table(void);
/* Validates the JSON "stream" object js (NULL = absent: all defaults) into *out.
 * Errors: -SPC_ECONFIG with the JSON path, -ENOMEM. */
int spci_stream_section_parse(const json_t *js, struct spc_stream_config *out, char *err, size_t errlen);
/* The section as a JSON object with every field. NULL on -ENOMEM. */
json_t *spci_stream_section_json(const struct spc_stream_config *c);

#endif
