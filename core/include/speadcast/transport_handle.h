/* Transport handles: a transport opened directly, without a stream, for tools, tests and
 * applications that produce their own packets (spc_packetizer_* in wire.h).
 */
#ifndef SPEADCAST_TRANSPORT_HANDLE_H
#define SPEADCAST_TRANSPORT_HANDLE_H

#include <stddef.h>
#include <stdint.h>

#include "speadcast/config.h"
#include "speadcast/error.h"
#include "speadcast/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A transport opened directly, without a stream: for tools, tests and applications that
 * produce their own packets. Sends are synchronous (they wait for asynchronous
 * transports to complete every packet). Not thread-safe: one thread at a time. */
struct spc_transport_handle;

/* Opens the config's transport with its options and stream section (max_packet_size and
 * flavour are passed to the transport). Errors: -SPC_ECONFIG, -SPC_EPLUGIN, -ENOMEM, or
 * the transport's own open error; the text says which. */
int spc_transport_handle_open(struct spc_transport_handle **out, const struct spc_config *cfg,
                              char *err, size_t errlen);

/* Flushes and closes the transport. NULL is a no-op. */
void spc_transport_handle_close(struct spc_transport_handle *h);

/* Number of substreams (>= 1) the transport opened with. */
unsigned spc_transport_handle_n_substreams(const struct spc_transport_handle *h);

/* Sends n packets (from the packetizer; their memory borrowed for the call) to one
 * substream and waits until each has completed. status, if not NULL, receives n codes
 * (0 or a negative error per packet). Returns 0 when every packet was sent, else the
 * first packet error, or -SPC_ESUBSTREAM / -EINVAL for bad arguments (nothing sent). */
int spc_transport_handle_send(struct spc_transport_handle *h, const struct spc_packet *pkts,
                              size_t n, uint32_t substream, int *status);

/* Copies the detail of the last error the transport recorded (errno text, endpoint...)
 * into err (see "Error detail" in speadcast.h); "" if none. Returns the detail's length. */
size_t spc_transport_handle_last_error(struct spc_transport_handle *h, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
