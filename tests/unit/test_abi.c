/* Freezes the plugin ABI: every struct a plugin shares with the core keeps its layout
 * (offsets and sizes on LP64 targets), and the constants keep their values. A change that
 * breaks one of these asserts is an ABI change: append instead, or bump
 * SPC_TRANSPORT_ABI_MAJOR (which renames the entry symbol) and update this file.
 * transport.h is included first and alone: a plugin needs nothing else. */
#include "speadcast/transport.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define SPC_ABI_OFFSET(s, f, n)                                                        \
    _Static_assert(offsetof(struct s, f) == (n), #s "." #f " moved")
#define SPC_ABI_SIZE(s, n) _Static_assert(sizeof(struct s) == (n), "sizeof " #s " changed")

#if defined(__LP64__) && (defined(__x86_64__) || defined(__aarch64__))
    SPC_ABI_OFFSET(spc_option, struct_size, 0);
    SPC_ABI_OFFSET(spc_option, type, 4);
    SPC_ABI_OFFSET(spc_option, name, 8);
    SPC_ABI_OFFSET(spc_option, help, 16);
    SPC_ABI_OFFSET(spc_option, offset, 24);
    SPC_ABI_OFFSET(spc_option, flags, 32);
    SPC_ABI_OFFSET(spc_option, def, 40);
    SPC_ABI_OFFSET(spc_option, min, 48);
    SPC_ABI_OFFSET(spc_option, max, 56);
    SPC_ABI_OFFSET(spc_option, multiple_of, 64);
    SPC_ABI_OFFSET(spc_option, min_count, 72);
    SPC_ABI_OFFSET(spc_option, max_count, 80);
    SPC_ABI_OFFSET(spc_option, choices, 88);
    SPC_ABI_OFFSET(spc_option, fields, 96);
    SPC_ABI_OFFSET(spc_option, n_fields, 104);
    SPC_ABI_OFFSET(spc_option, item_min_length, 112); /* minor 3 */
    SPC_ABI_OFFSET(spc_option, item_max_length, 120);
    SPC_ABI_SIZE(spc_option, 128);
    SPC_ABI_OFFSET(spc_endpoint, struct_size, 0);
    SPC_ABI_OFFSET(spc_endpoint, port, 4);
    SPC_ABI_OFFSET(spc_endpoint, host, 8);
    SPC_ABI_SIZE(spc_endpoint, 16);
    SPC_ABI_OFFSET(spc_endpoint_list, n, 0);
    SPC_ABI_OFFSET(spc_endpoint_list, items, 8);
    SPC_ABI_SIZE(spc_endpoint_list, 16);
    SPC_ABI_OFFSET(spc_string_list, n, 0);
    SPC_ABI_OFFSET(spc_string_list, items, 8);
    SPC_ABI_SIZE(spc_string_list, 16);
    SPC_ABI_OFFSET(spc_transport, struct_size, 0);
    SPC_ABI_OFFSET(spc_transport, n_substreams, 4);
    SPC_ABI_OFFSET(spc_transport, svc, 8);
    SPC_ABI_OFFSET(spc_transport, desc, 16);
    SPC_ABI_OFFSET(spc_transport, core, 24);
    SPC_ABI_SIZE(spc_transport, 32);
    SPC_ABI_OFFSET(spc_transport_params, struct_size, 0);
    SPC_ABI_OFFSET(spc_transport_params, rate_method, 4);
    SPC_ABI_OFFSET(spc_transport_params, max_packet_size, 8);
    SPC_ABI_OFFSET(spc_transport_params, flavour, 16);
    SPC_ABI_OFFSET(spc_transport_params, rate, 24);
    SPC_ABI_OFFSET(spc_transport_params, burst_size, 32);
    SPC_ABI_OFFSET(spc_transport_params, burst_rate_ratio, 40);
    SPC_ABI_OFFSET(spc_transport_params, max_heaps, 48);
    SPC_ABI_SIZE(spc_transport_params, 56);
    SPC_ABI_OFFSET(spc_tx_packet, iov, 0);
    SPC_ABI_OFFSET(spc_tx_packet, n_iov, 8);
    SPC_ABI_OFFSET(spc_tx_packet, substream, 12);
    SPC_ABI_OFFSET(spc_tx_packet, size, 16);
    SPC_ABI_OFFSET(spc_tx_packet, token, 24);
    SPC_ABI_OFFSET(spc_tx_packet, status, 32);
    SPC_ABI_SIZE(spc_tx_packet, 40);
    SPC_ABI_OFFSET(spc_tx_batch, struct_size, 0);
    SPC_ABI_OFFSET(spc_tx_batch, packet_size, 4);
    SPC_ABI_OFFSET(spc_tx_batch, n_packets, 8);
    SPC_ABI_OFFSET(spc_tx_batch, packets, 16);
    SPC_ABI_SIZE(spc_tx_batch, 24);
    SPC_ABI_OFFSET(spc_transport_ops, struct_size, 0);
    SPC_ABI_OFFSET(spc_transport_ops, open, 8);
    SPC_ABI_OFFSET(spc_transport_ops, close, 16);
    SPC_ABI_OFFSET(spc_transport_ops, send, 24);
    SPC_ABI_OFFSET(spc_transport_ops, flush, 32);
    SPC_ABI_OFFSET(spc_transport_ops, poll, 40);
    SPC_ABI_OFFSET(spc_transport_ops, get_fd, 48);
    SPC_ABI_OFFSET(spc_transport_ops, register_memory, 56);
    SPC_ABI_OFFSET(spc_transport_ops, deregister_memory, 64);
    SPC_ABI_SIZE(spc_transport_ops, 72);
    SPC_ABI_OFFSET(spc_core_services, struct_size, 0);
    SPC_ABI_OFFSET(spc_core_services, abi_minor, 4);
    SPC_ABI_OFFSET(spc_core_services, log, 8);
    SPC_ABI_OFFSET(spc_core_services, vlog, 16);
    SPC_ABI_OFFSET(spc_core_services, set_error, 24);
    SPC_ABI_OFFSET(spc_core_services, clock_ns, 32);
    SPC_ABI_OFFSET(spc_core_services, complete, 40);
    SPC_ABI_OFFSET(spc_core_services, strerror, 48);
    SPC_ABI_OFFSET(spc_core_services, packet_parse, 56);
    SPC_ABI_OFFSET(spc_core_services, decoder_create, 64);
    SPC_ABI_OFFSET(spc_core_services, decoder_destroy, 72);
    SPC_ABI_OFFSET(spc_core_services, decoder_add_packet, 80);
    SPC_ABI_OFFSET(spc_core_services, decoder_pop, 88);
    SPC_ABI_OFFSET(spc_core_services, decoder_flush, 96);
    SPC_ABI_OFFSET(spc_core_services, decoded_heap_free, 104);
    SPC_ABI_OFFSET(spc_core_services, frame_write, 112);
    SPC_ABI_OFFSET(spc_core_services, frame_multicast_mac, 120);
    SPC_ABI_OFFSET(spc_core_services, ipv4_checksum, 128);
    SPC_ABI_OFFSET(spc_core_services, mac_parse, 136);
    SPC_ABI_OFFSET(spc_core_services, inproc_queue_open, 144);
    SPC_ABI_OFFSET(spc_core_services, inproc_queue_close, 152);
    SPC_ABI_OFFSET(spc_core_services, inproc_queue_pushv, 160);
    SPC_ABI_OFFSET(spc_core_services, inproc_queue_stop, 168);
    SPC_ABI_OFFSET(spc_core_services, set_hw_paced, 176); /* ABI minor 2 */
    SPC_ABI_SIZE(spc_core_services, 184);
    SPC_ABI_OFFSET(spc_transport_descriptor, struct_size, 0);
    SPC_ABI_OFFSET(spc_transport_descriptor, abi_major, 4);
    SPC_ABI_OFFSET(spc_transport_descriptor, abi_minor, 8);
    SPC_ABI_OFFSET(spc_transport_descriptor, caps, 12);
    SPC_ABI_OFFSET(spc_transport_descriptor, name, 16);
    SPC_ABI_OFFSET(spc_transport_descriptor, version, 24);
    SPC_ABI_OFFSET(spc_transport_descriptor, description, 32);
    SPC_ABI_OFFSET(spc_transport_descriptor, options, 40);
    SPC_ABI_OFFSET(spc_transport_descriptor, n_options, 48);
    SPC_ABI_OFFSET(spc_transport_descriptor, options_size, 56);
    SPC_ABI_OFFSET(spc_transport_descriptor, object_size, 64);
    SPC_ABI_OFFSET(spc_transport_descriptor, max_substreams, 72);
    SPC_ABI_OFFSET(spc_transport_descriptor, ops, 80);
    SPC_ABI_SIZE(spc_transport_descriptor, 88);
_Static_assert(sizeof(union spc_option_value) == 8, "spc_option_value changed");
#endif

_Static_assert(SPC_TRANSPORT_ABI_MAJOR == 1, "ABI major changed: update the entry symbol name");
_Static_assert(SPC_OPT_BOOL == 1 && SPC_OPT_INT == 2 && SPC_OPT_UINT == 3 && SPC_OPT_DOUBLE == 4 &&
                   SPC_OPT_STRING == 5 && SPC_OPT_ENUM == 6 && SPC_OPT_ENDPOINTS == 7 &&
                   SPC_OPT_STRINGS == 8 && SPC_OPT_OBJECT == 9,
               "option type values changed");
_Static_assert(SPC_OPT_REQUIRED == 1 && SPC_OPT_MIN == 2 && SPC_OPT_MAX == 4 && SPC_OPT_DEFAULT == 8,
               "option flag values changed");
_Static_assert(SPC_TRANSPORT_CAP_RELIABLE == 1 && SPC_TRANSPORT_CAP_ASYNC == 2 &&
                   SPC_TRANSPORT_CAP_MEMREG == 4 && SPC_TRANSPORT_CAP_HW_RATE == 8,
               "capability values changed");
_Static_assert(SPC_TX_PENDING == 1, "SPC_TX_PENDING changed");
_Static_assert(SPC_RATE_METHOD_SW == 0 && SPC_RATE_METHOD_HW == 1 && SPC_RATE_METHOD_AUTO == 2,
               "rate method values changed");
_Static_assert(SPC_LOG_ERROR == 0 && SPC_LOG_WARNING == 1 && SPC_LOG_INFO == 2 && SPC_LOG_DEBUG == 3,
               "log levels changed");

Test(abi, entry_symbol_name_carries_the_major)
{
    char want[64];
    snprintf(want, sizeof want, "spc_transport_entry_v%d", SPC_TRANSPORT_ABI_MAJOR);
    cr_expect_str_eq(SPC_TRANSPORT_ENTRY_SYMBOL, want);
}

/* The stride helpers read packets with the core's stride, whatever the plugin's sizeof. */
Test(abi, batch_stride)
{
    unsigned char mem[3 * 64];
    memset(mem, 0, sizeof mem);
    struct spc_tx_batch b = {.struct_size = sizeof b, .packet_size = 64, .n_packets = 3,
                             .packets = (struct spc_tx_packet *)(void *)mem};
    for (size_t i = 0; i < 3; i++)
        spc_tx_batch_packet(&b, i)->status = (int)i + 7;
    for (size_t i = 0; i < 3; i++)
        cr_expect_eq(((struct spc_tx_packet *)(void *)(mem + 64 * i))->status, (int)i + 7);
}

Test(abi, has_field)
{
    struct spc_core_services s = {.struct_size = offsetof(struct spc_core_services, decoded_heap_free) +
                                                 sizeof(void *)};
    cr_expect(SPC_HAS_FIELD(&s, struct spc_core_services, decoded_heap_free));
    cr_expect(!SPC_HAS_FIELD(&s, struct spc_core_services, frame_write));
    /* A minor-1 core's table ends before set_hw_paced. */
    s.struct_size = offsetof(struct spc_core_services, inproc_queue_stop) + sizeof(void *);
    cr_expect(SPC_HAS_FIELD(&s, struct spc_core_services, inproc_queue_stop));
    cr_expect(!SPC_HAS_FIELD(&s, struct spc_core_services, set_hw_paced));
    cr_expect_geq(SPC_TRANSPORT_ABI_MINOR, 2);
}

Test(abi, gather)
{
    char a[] = "abc", b[] = "defg";
    struct iovec iov[2] = {{a, 3}, {b, 4}};
    struct spc_tx_packet p = {.iov = iov, .n_iov = 2, .size = 7};
    char out[8] = "";
    cr_expect_eq(spc_tx_packet_gather(&p, out), 7);
    cr_expect_eq(memcmp(out, "abcdefg", 7), 0);
}
