/* Stream configuration, transport selection and the transport catalogue.
 *
 * A stream is described by one JSON document:
 *
 *   {"transport": "udp",
 *    "stream":  {"max_packet_size": 1472, "rate": 0, "burst_size": 65536, "max_heaps": 4,
 *                "burst_rate_ratio": 1.05, "rate_method": "auto", "on_full": "fail",
 *                "flavour": {"heap_address_bits": 40, "bug_compat": 0}},
 *    "options": {...the transport's own options...},
 *    "plugin_path": ["/opt/speadcast/plugins"]}
 *
 * Only "transport" is required. Parsing is strict: an unknown key is an error with a
 * "did you mean" hint, and every error names its JSON path and the rule it broke, e.g.
 *   options.endpoints[1].port: 70000 is above 65535
 * The same document can be built from C (spc_config_create + the spc_config_set_*
 * calls) without writing JSON. schemas/stream.schema.json is the JSON Schema of the
 * document and schemas/transport/<name>.schema.json that of each transport's options.
 *
 * Error text: functions that take (char *err, size_t errlen) write a NUL-terminated
 * message there on failure (truncated to errlen; err may be NULL). The return code is
 * -SPC_ECONFIG for a bad config, -SPC_EPLUGIN when the transport cannot be loaded,
 * -ENOMEM, or -ENOENT/-EIO for an unreadable file.
 *
 * Thread rules: a struct spc_config is not thread-safe while being modified; once
 * built, any number of threads may read it and open streams/transports from it.
 * Every other function here is thread-safe.
 */
#ifndef SPEADCAST_CONFIG_H
#define SPEADCAST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "speadcast/error.h"
#include "speadcast/log.h"
#include "speadcast/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ stream config */

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

/* The "stream" section. Bounds (checked by spc_stream_config_check and the parser):
 *   max_packet_size  56 .. 16777216           (SPEC §3 default 1472)
 *   rate             >= 0, finite, bytes/s; 0 = unlimited  (default 0)
 *   burst_size       bytes sent back to back (default 65536)
 *   max_heaps        >= 1                      (default 4)
 *   burst_rate_ratio >= 1                      (default 1.05)
 *   rate_method      default SPC_RATE_METHOD_AUTO
 *   on_full          default SPC_ON_FULL_FAIL
 *   flavour          heap_address_bits 8..56, a multiple of 8 (default 40); bug_compat 0..7 */
struct spc_stream_config {
    size_t max_packet_size;
    double rate;
    size_t burst_size;
    size_t max_heaps;
    double burst_rate_ratio;
    enum spc_rate_method rate_method;
    enum spc_on_full on_full;
    struct spc_flavour flavour;
};

#define SPC_STREAM_MAX_PACKET_SIZE 16777216u

#define SPC_STREAM_CONFIG_DEFAULT                                                      \
    ((struct spc_stream_config){1472, 0.0, 65536, 4, 1.05, SPC_RATE_METHOD_AUTO,         \
                                SPC_ON_FULL_FAIL, {40, 0}})

/* Checks every bound above. Errors: -SPC_ECONFIG (text names the field, e.g.
 * "stream.max_heaps: 0 is below 1"), -EINVAL for cfg NULL. */
int spc_stream_config_check(const struct spc_stream_config *cfg, char *err, size_t errlen);

/* ------------------------------------------------------------ whole config */

/* A validated stream configuration: transport (resolved and loaded), stream section,
 * transport options and plugin path. Opaque; free with spc_config_free. */
struct spc_config;

/* Parses a JSON document (NUL-terminated text, borrowed for the call). The transport is
 * loaded (see "Loading" below) and the options are validated against its option table.
 * On success the caller owns *out. */
int spc_config_parse(struct spc_config **out, const char *json, char *err, size_t errlen);

/* As spc_config_parse, reading the document from a file. A file error names the path.
 * Relative plugin_path entries are taken relative to the file's directory. */
int spc_config_load(struct spc_config **out, const char *path, char *err, size_t errlen);

/* Builds a config from C: transport name, stream section (NULL = defaults; checked) and
 * plugin_path (NULL-terminated array of directories, or NULL). Options start empty
 * (defaults) and are set with the calls below. All arguments are borrowed for the call. */
int spc_config_create(struct spc_config **out, const char *transport,
                      const struct spc_stream_config *stream, const char *const *plugin_path,
                      char *err, size_t errlen);

/* Replaces the stream section (checked first; the config is unchanged on error). */
int spc_config_set_stream(struct spc_config *cfg, const struct spc_stream_config *stream,
                          char *err, size_t errlen);

/* Replaces all transport options with a JSON object text, validated as when parsing. */
int spc_config_set_options_json(struct spc_config *cfg, const char *json, char *err,
                                size_t errlen);

/* Set one transport option, checked against the option table at once (name, type and
 * bounds; the config is unchanged on error). name is the option's key; a nested field is
 * written "outer.inner". set_string also sets enumerated options (by choice name).
 * add_endpoint and add_string append one element to a list option (the list's length
 * bounds are checked when the config is used, since it is built up one by one). */
int spc_config_set_bool(struct spc_config *cfg, const char *name, bool value, char *err,
                        size_t errlen);
int spc_config_set_int(struct spc_config *cfg, const char *name, int64_t value, char *err,
                       size_t errlen);
int spc_config_set_uint(struct spc_config *cfg, const char *name, uint64_t value, char *err,
                        size_t errlen);
int spc_config_set_double(struct spc_config *cfg, const char *name, double value, char *err,
                          size_t errlen);
int spc_config_set_string(struct spc_config *cfg, const char *name, const char *value,
                          char *err, size_t errlen);
int spc_config_add_endpoint(struct spc_config *cfg, const char *name, const char *host,
                            unsigned port, char *err, size_t errlen);
int spc_config_add_string(struct spc_config *cfg, const char *name, const char *value,
                          char *err, size_t errlen);

/* Full check of a config built with the calls above: required options present, list
 * lengths within bounds. Parsing already does this; opening a transport does it again. */
int spc_config_check(const struct spc_config *cfg, char *err, size_t errlen);

/* The transport name; the stream section. Borrowed from cfg. */
const char *spc_config_transport(const struct spc_config *cfg);
const struct spc_stream_config *spc_config_stream(const struct spc_config *cfg);

/* The effective document with every default filled in, as indented JSON. The caller
 * frees *out with free(). Errors: -ENOMEM. */
int spc_config_to_json(const struct spc_config *cfg, char **out);

/* Frees the config. NULL is a no-op. Streams opened from it do not depend on it. */
void spc_config_free(struct spc_config *cfg);

/* ------------------------------------------------------------ schemas */

/* JSON Schema (draft 2020-12) of the whole config document, as printed into
 * schemas/stream.schema.json; "options" is left open there (each transport has its own
 * schema). The caller frees *out with free(). Errors: -ENOMEM. */
int spc_stream_schema(char **out);

/* JSON Schema of a transport's "options" object, printed from its option table (the text
 * of schemas/transport/<name>.schema.json). Loads the transport. The caller frees *out. */
int spc_transport_schema(const char *name, const char *const *plugin_path, char **out,
                         char *err, size_t errlen);

/* ------------------------------------------------------------ loading and catalogue */

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

/* ------------------------------------------------------------ transport handles */

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

/* Last error detail the transport recorded (errno text, endpoint...); "" if none.
 * Borrowed until the next call on h. */
const char *spc_transport_handle_error(const struct spc_transport_handle *h);

/* For the bytes transport: the bytes of every packet sent so far, back to back.
 * *data is borrowed until the next send or close. Errors: -SPC_ENOTSUP for another
 * transport. spc_transport_handle_bytes_reset empties the buffer. */
int spc_transport_handle_bytes(const struct spc_transport_handle *h, const uint8_t **data,
                               size_t *len);
int spc_transport_handle_bytes_reset(struct spc_transport_handle *h);

#ifdef __cplusplus
}
#endif

#endif
