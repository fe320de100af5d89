/* Stream configuration: the JSON document, or the same built from C.
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
 * Error detail goes to the (err, errlen) buffer every fallible call here takes (see
 * speadcast.h). The return code is -SPC_ECONFIG for a bad config, -SPC_EPLUGIN when the
 * transport cannot be loaded (catalogue.h), -ENOMEM, or -ENOENT/-EIO for an unreadable
 * file.
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
#include "speadcast/stream_config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ whole config */

/* A validated stream configuration: transport (resolved and loaded), stream section,
 * transport options and plugin path. Opaque; the caller destroys it with spc_config_destroy. */
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
void spc_config_destroy(struct spc_config *cfg);

/* JSON Schema (draft 2020-12) of the whole config document, as printed into
 * schemas/stream.schema.json; "options" is left open there (each transport has its own
 * schema: spc_transport_schema in catalogue.h). The caller frees *out with free().
 * Errors: -ENOMEM. */
int spc_config_document_schema(char **out);


#ifdef __cplusplus
}
#endif

#endif
