/* speadcast error codes.
 *
 * Every function that can fail returns int: 0 on success, a negative code on failure.
 * Codes equal -errno where one fits (-EINVAL, -ENOMEM, -EAGAIN, ...); project-specific
 * codes start at SPC_ERR_BASE (256). spc_strerror() names every code.
 */
#ifndef SPEADCAST_ERROR_H
#define SPEADCAST_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#define SPC_ERR_BASE 256

enum spc_error {
    /* --- encoding (heaps, flavours, packetizer) --- */
    SPC_EFLAVOUR = SPC_ERR_BASE,   /* heap_address_bits not a multiple of 8 in 8..56, or bad bug_compat */
    SPC_EITEM_ID,                  /* item ID out of range for the flavour (or 0 for a descriptor) */
    SPC_EIMMEDIATE_WIDTH,          /* immediate value does not fit in heap_address_bits */
    SPC_EPACKET_SIZE,              /* max_packet_size below the minimum of 56 */
    SPC_EREPEAT_POINTERS,          /* packet size too small to repeat item pointers */
    SPC_ETOO_MANY_POINTERS,        /* a packet would carry more than 65535 item pointers */
    SPC_EHEAP_TOO_LARGE,           /* heap payload does not fit the flavour's heap address */
    SPC_EVARIABLE_DIMS,            /* more than one variable dimension, or one with a dtype */
    SPC_EFORMAT_DTYPE,             /* descriptor has both or neither of format and dtype */
    SPC_EHEAP_CNT,                 /* heap cnt does not fit in heap_address_bits */
    SPC_EDESCRIPTOR,               /* other invalid descriptor (bad field, Fortran order with format, ...) */
    /* --- decoding --- */
    SPC_EBAD_MAGIC,                /* first byte is not 0x53 */
    SPC_EBAD_VERSION,              /* version byte is not 4 */
    SPC_EBAD_WIDTHS,               /* item pointer / heap address widths not 8 bytes / 1..7 bytes */
    SPC_ETRUNCATED,                /* packet shorter than its header, pointers or payload length */
    SPC_EMISSING_FIELD,            /* a packet lacks heap cnt or payload length */
    SPC_EBAD_OFFSET,               /* payload offset/length outside the heap size */
    SPC_EINCONSISTENT,             /* packet disagrees with earlier packets of the same heap */
    SPC_EHEAP_LIMIT,               /* heap larger than the decoder's max_heap_size */
    SPC_EBAD_POINTER,              /* addressed item pointer outside the heap payload */
    SPC_EBAD_DESCRIPTOR,           /* descriptor payload cannot be parsed */
    /* --- streams, transports, config (later layers) --- */
    SPC_EQUEUE_FULL,               /* send queue has no room (on_full = "fail") */
    SPC_ESTOPPED,                  /* the stream or queue has been stopped/closed */
    SPC_ENOTSUP,                   /* operation not supported by this transport */
    SPC_ECONFIG,                   /* invalid configuration; details in the error text */
    SPC_EPLUGIN,                   /* a transport plugin could not be loaded */
    SPC_ESUBSTREAM,                /* substream index out of range */
    SPC_ECLOSED,                   /* the peer closed the connection */
    SPC_ERR_END
};

/* Human-readable text for a code (negative or positive). Never NULL; static storage;
 * thread-safe. Unknown codes give "unknown error". */
const char *spc_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif
