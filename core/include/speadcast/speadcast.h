/* speadcast: send SPEAD streams at line rate.
 *
 * The application API. Include this one header; it pulls in the parts:
 *   error.h    error codes and spc_strerror
 *   wire.h     flavours, heaps, descriptors, the packetizer
 *   decoder.h  packet parsing, heap reassembly, descriptor parsing
 *   log.h      the replaceable log handler
 *   config.h   stream config (JSON and C), transport loading and catalogue
 *   stream.h   send streams: queue, writer thread, rate limiter, completions
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
#include "speadcast/config.h"
#include "speadcast/item.h"
#include "speadcast/stream.h"

#endif
