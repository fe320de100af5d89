/* The built-in "bytes" transport: packets are appended to a memory buffer instead of
 * going to a network, for tests, golden vectors and applications that write SPEAD into
 * files themselves. These calls belong to that transport alone (as a libfabric
 * provider's extension calls do): on a stream or handle of any other transport they
 * fail with -SPC_ENOTSUP.
 */
#ifndef SPEADCAST_BYTES_H
#define SPEADCAST_BYTES_H

#include <stddef.h>
#include <stdint.h>

#include "speadcast/error.h"
#include "speadcast/stream.h"
#include "speadcast/transport_handle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The bytes of every packet a stream sent so far, back to back. *data is valid until the
 * next send, reset or close, and only while no heap is in flight (call after
 * spc_stream_flush). spc_bytes_stream_reset empties the buffer; it may be called at any
 * time, from any thread, completion callbacks included: it falls between two transport
 * sends, so the buffer always holds whole packets. Errors: -SPC_ENOTSUP. */
int spc_bytes_stream_data(struct spc_stream *s, const uint8_t **data, size_t *len);
int spc_bytes_stream_reset(struct spc_stream *s);

/* The same for a transport handle: *data is borrowed until the next send, reset or
 * close. Not thread-safe (as the handle). Errors: -SPC_ENOTSUP. */
int spc_bytes_handle_data(const struct spc_transport_handle *h, const uint8_t **data,
                          size_t *len);
int spc_bytes_handle_reset(struct spc_transport_handle *h);

#ifdef __cplusplus
}
#endif

#endif
