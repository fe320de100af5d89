/* The "stream" section of a stream configuration: what every transport is opened with
 * (packet size, flavour, rate). Its defaults are named constants, written once here and
 * used both by SPC_STREAM_CONFIG_DEFAULT and by the core's option table for the section.
 * Included by config.h (applications) and transport.h (plugins read enum
 * spc_rate_method in struct spc_transport_params).
 */
#ifndef SPEADCAST_STREAM_CONFIG_H
#define SPEADCAST_STREAM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "speadcast/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

enum spc_rate_method {
    SPC_RATE_METHOD_SW = 0,   /* software rate limiter in the writer thread */
    SPC_RATE_METHOD_HW = 1,   /* the transport paces in hardware where it reports at open
                                 that it can (ibverbs on a NIC that paces at that rate);
                                 elsewhere the software limiter, with a warning logged */
    SPC_RATE_METHOD_AUTO = 2  /* the software limiter for now (SPEC §3: auto = sw) */
};

enum spc_on_full {
    SPC_ON_FULL_FAIL = 0,     /* sending to a full queue fails at once with -SPC_EQUEUE_FULL */
    SPC_ON_FULL_BLOCK = 1     /* sending waits for room */
};

/* The names the config document uses for rate methods and on_full modes, indexed by the
 * enums and NULL-terminated: {"sw", "hw", "auto", NULL} and {"fail", "block", NULL}.
 * Static storage; thread-safe. */
const char *const *spc_rate_method_names(void);
const char *const *spc_on_full_names(void);

/* Defaults of the stream section (SPEC §3), and the largest max_packet_size. */
#define SPC_STREAM_DEFAULT_MAX_PACKET_SIZE 1472u
#define SPC_STREAM_DEFAULT_RATE 0.0
#define SPC_STREAM_DEFAULT_BURST_SIZE 65536u
#define SPC_STREAM_DEFAULT_MAX_HEAPS 4u
#define SPC_STREAM_DEFAULT_BURST_RATE_RATIO 1.05
#define SPC_STREAM_DEFAULT_RATE_METHOD SPC_RATE_METHOD_AUTO
#define SPC_STREAM_DEFAULT_ON_FULL SPC_ON_FULL_FAIL
#define SPC_STREAM_MAX_PACKET_SIZE 16777216u

/* The "stream" section. Sized (struct_size first, fields only appended): a caller sets
 * struct_size = sizeof(struct spc_stream_config), as SPC_STREAM_CONFIG_DEFAULT does;
 * fields beyond a caller's struct_size take their defaults. Bounds (checked by
 * spc_stream_config_check and the parser):
 *   max_packet_size  56 .. SPC_STREAM_MAX_PACKET_SIZE
 *   rate             >= 0, finite, bytes/s; 0 = unlimited
 *   burst_size       bytes sent back to back
 *   max_heaps        >= 1
 *   burst_rate_ratio >= 1
 *   flavour          heap_address_bits 8..56, a multiple of 8; bug_compat 0..7 */
struct spc_stream_config {
    uint32_t struct_size;
    size_t max_packet_size;
    double rate;
    size_t burst_size;
    size_t max_heaps;
    double burst_rate_ratio;
    enum spc_rate_method rate_method;
    enum spc_on_full on_full;
    struct spc_flavour flavour;
};

#define SPC_STREAM_CONFIG_DEFAULT                                                      \
    ((struct spc_stream_config){.struct_size = sizeof(struct spc_stream_config),         \
                                .max_packet_size = SPC_STREAM_DEFAULT_MAX_PACKET_SIZE,   \
                                .rate = SPC_STREAM_DEFAULT_RATE,                         \
                                .burst_size = SPC_STREAM_DEFAULT_BURST_SIZE,             \
                                .max_heaps = SPC_STREAM_DEFAULT_MAX_HEAPS,               \
                                .burst_rate_ratio = SPC_STREAM_DEFAULT_BURST_RATE_RATIO, \
                                .rate_method = SPC_STREAM_DEFAULT_RATE_METHOD,           \
                                .on_full = SPC_STREAM_DEFAULT_ON_FULL,                   \
                                .flavour = {.heap_address_bits = SPC_FLAVOUR_DEFAULT_HEAP_ADDRESS_BITS}})

/* Checks struct_size and every bound above. Errors: -SPC_ECONFIG (text names the field,
 * e.g. "stream.max_heaps: 0 is below 1"), -EINVAL for cfg NULL or a struct_size too small
 * to hold max_packet_size. Thread-safe. */
int spc_stream_config_check(const struct spc_stream_config *cfg, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
