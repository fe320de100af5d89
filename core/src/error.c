#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "speadcast/error.h"
#include "error_internal.h"

/* Text for project codes, indexed by code - SPC_ERR_BASE. */
static const char *const spc_texts[SPC_ERR_END - SPC_ERR_BASE] = {
    [SPC_EFLAVOUR - SPC_ERR_BASE] = "invalid flavour (heap_address_bits must be a multiple of 8 in 8..56, bug_compat within 0..7)",
    [SPC_EITEM_ID - SPC_ERR_BASE] = "item ID out of range for the flavour",
    [SPC_EIMMEDIATE_WIDTH - SPC_ERR_BASE] = "immediate value too wide for the flavour's heap address bits",
    [SPC_EPACKET_SIZE - SPC_ERR_BASE] = "max_packet_size is below the minimum of 56 bytes",
    [SPC_EREPEAT_POINTERS - SPC_ERR_BASE] = "packet size too small to repeat item pointers",
    [SPC_ETOO_MANY_POINTERS - SPC_ERR_BASE] = "a packet would carry more than 65535 item pointers",
    [SPC_EHEAP_TOO_LARGE - SPC_ERR_BASE] = "heap larger than the flavour can address",
    [SPC_EVARIABLE_DIMS - SPC_ERR_BASE] = "shape has more than one variable dimension, or a variable dimension with a dtype",
    [SPC_EFORMAT_DTYPE - SPC_ERR_BASE] = "descriptor needs exactly one of format and dtype",
    [SPC_EHEAP_CNT - SPC_ERR_BASE] = "heap cnt does not fit in the flavour's heap address bits",
    [SPC_EDESCRIPTOR - SPC_ERR_BASE] = "invalid descriptor",
    [SPC_EBAD_MAGIC - SPC_ERR_BASE] = "not a SPEAD packet (bad magic byte)",
    [SPC_EBAD_VERSION - SPC_ERR_BASE] = "unsupported SPEAD version (only 4 is accepted)",
    [SPC_EBAD_WIDTHS - SPC_ERR_BASE] = "unsupported item pointer or heap address width",
    [SPC_ETRUNCATED - SPC_ERR_BASE] = "packet truncated (shorter than its header, pointers or payload)",
    [SPC_EMISSING_FIELD - SPC_ERR_BASE] = "packet lacks the heap cnt or payload length item",
    [SPC_EBAD_OFFSET - SPC_ERR_BASE] = "payload offset and length fall outside the heap size",
    [SPC_EINCONSISTENT - SPC_ERR_BASE] = "packet disagrees with earlier packets of the same heap",
    [SPC_EHEAP_LIMIT - SPC_ERR_BASE] = "heap larger than the decoder's max_heap_size",
    [SPC_EBAD_POINTER - SPC_ERR_BASE] = "item pointer addresses bytes outside the heap",
    [SPC_EBAD_DESCRIPTOR - SPC_ERR_BASE] = "descriptor cannot be parsed",
    [SPC_EQUEUE_FULL - SPC_ERR_BASE] = "send queue is full",
    [SPC_ESTOPPED - SPC_ERR_BASE] = "stream or queue has been stopped",
    [SPC_ENOTSUP - SPC_ERR_BASE] = "operation not supported by this transport",
    [SPC_ECONFIG - SPC_ERR_BASE] = "invalid configuration",
    [SPC_EPLUGIN - SPC_ERR_BASE] = "transport plugin could not be loaded",
    [SPC_ESUBSTREAM - SPC_ERR_BASE] = "substream index out of range",
    [SPC_ECLOSED - SPC_ERR_BASE] = "connection closed by the peer",
};

const char *spc_strerror(int code)
{
    if (code < 0)
        code = -code;
    if (code == 0)
        return "success";
    if (code >= SPC_ERR_BASE && code < SPC_ERR_END) {
        const char *t = spc_texts[code - SPC_ERR_BASE];
        return t ? t : "unknown error";
    }
    if (code < SPC_ERR_BASE) {
        /* strerror's text for errno values; glibc returns static storage for known codes. */
        static const char *const unknown = "unknown error";
        const char *t = strerrordesc_np(code);
        return t ? t : unknown;
    }
    return "unknown error";
}

size_t spci_copy_error(const char *detail, char *err, size_t errlen)
{
    if (!detail)
        detail = "";
    size_t n = strlen(detail);
    if (err && errlen) {
        size_t k = n < errlen - 1 ? n : errlen - 1;
        memcpy(err, detail, k);
        err[k] = '\0';
    }
    return n;
}

void spci_verrorf(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
}

void spci_errorf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    spci_verrorf(err, errlen, fmt, ap);
    va_end(ap);
}
