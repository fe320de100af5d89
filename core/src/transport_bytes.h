/* Core-internal: the built-in "bytes" transport (transport_bytes.c). It needs only the
 * plugin ABI (transport.h), like any plugin. */
#ifndef SPCI_TRANSPORT_BYTES_H
#define SPCI_TRANSPORT_BYTES_H

#include <stddef.h>
#include <stdint.h>

#include "speadcast/transport.h"

/* Its descriptor, registered by the loader as a built-in. */
const struct spc_transport_descriptor *spci_bytes_entry(void);

/* The bytes collected by an opened bytes transport obj (borrowed until its next send or
 * close), and emptying them. -SPC_ENOTSUP when obj is another transport's. */
int spci_bytes_data(const struct spc_transport *obj, const uint8_t **data, size_t *len);
int spci_bytes_reset(struct spc_transport *obj);

#endif
