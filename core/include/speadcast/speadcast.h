/* speadcast: send SPEAD streams at line rate.
 *
 * The application API. Include this one header; it pulls in the parts:
 *   error.h            error codes and spc_strerror
 *   wire.h             flavours, heaps, descriptors, the packetizer
 *   decoder.h          packet parsing, heap reassembly, descriptor parsing
 *   inproc.h           in-process packet queues and their receiver
 *   log.h              the replaceable log handler
 *   stream_config.h    the "stream" section (packet size, rate, flavour) and its defaults
 *   config.h           the stream configuration document (JSON or built from C)
 *   catalogue.h        plugin search path, the transports found, their option schemas
 *   transport_handle.h a transport opened without a stream
 *   item.h             items, item groups and the heap generator
 *   stream.h           send streams: queue, writer thread, rate limiter, completions
 *   bytes.h            calls of the built-in "bytes" transport (packets into memory)
 * transport.h is not included: it is the plugin ABI, for transport plugins.
 *
 * Return codes. Every function that can fail returns int: 0 on success or a negative
 * code (error.h): -errno where one fits, else a project code that spc_strerror names.
 * Constructors return the object through an out-parameter.
 *
 * Error detail: one convention for every object. The text saying what exactly failed
 * (the JSON path, the file tried, the errno text and endpoint, "16 is out of range for
 * u4") is always copied into a buffer of the caller's, (char *err, size_t errlen):
 * NUL-terminated, truncated to errlen, nothing written when err is NULL or errlen 0,
 * "" when there is no detail. It is never handed out as a pointer into the library, and
 * no call leaves it in per-thread storage for the application to fetch. Two places give it:
 * - a call that builds something from input before an object exists to hold the detail
 *   takes (err, errlen) as its last two parameters: spc_config_parse/_load/_create and
 *   the spc_config_set_* calls, spc_stream_config_check, spc_stream_open(_json),
 *   spc_transport_handle_open, spc_transport_schema, spc_item_create;
 * - every object whose calls fail with detail keeps the detail of its latest failed
 *   call, and spc_<object>_last_error(obj, err, errlen) copies it out, returning the
 *   detail's full length (as snprintf): spc_stream_last_error (also for failures found
 *   on the writer thread), spc_transport_handle_last_error, spc_item_last_error,
 *   spc_item_group_last_error, spc_heap_generator_last_error. Its thread rule is the
 *   object's.
 *
 * Names of lifetimes: spc_<object>_create / _destroy for an object the caller makes;
 * spc_<object>_open / _close for one that holds a transport or a shared named resource
 * (close flushes or drops the reference); spc_<result>_free for plain data a call hands
 * over (a decoded heap, a transport list, a string vector). Destroy, close and free
 * accept NULL.
 *
 * Versioning: every exported function carries a symbol version (SPEADCAST_0.1, ...; see
 * core/speadcast.map); public option and stats structs start with uint32_t struct_size
 * and only ever gain fields at their end; initialise them with their *_DEFAULT or
 * *_INIT macro.
 */
#ifndef SPEADCAST_SPEADCAST_H
#define SPEADCAST_SPEADCAST_H

#define SPC_VERSION_MAJOR 0
#define SPC_VERSION_MINOR 1
#define SPC_VERSION_PATCH 0
#define SPC_VERSION_STRING "0.1.0"

#include "speadcast/error.h"
#include "speadcast/wire.h"
#include "speadcast/decoder.h"
#include "speadcast/inproc.h"
#include "speadcast/log.h"
#include "speadcast/stream_config.h"
#include "speadcast/config.h"
#include "speadcast/catalogue.h"
#include "speadcast/transport_handle.h"
#include "speadcast/item.h"
#include "speadcast/stream.h"
#include "speadcast/bytes.h"

#endif
