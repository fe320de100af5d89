/* The pcap transport read back by Wireshark's tshark: every frame parses, IPv4
 * checksums verify, addresses, ports and MACs are the configured ones, and the UDP
 * payloads decode to the heaps that were sent. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "speadcast/speadcast.h"
#include "speadcast/stream.h"

#define N_HEAPS 6

static const size_t heap_sizes[N_HEAPS] = {100, 20000, 3000, 0, 65000, 1472};

static bool have_tshark(void)
{
    return system("tshark --version > /dev/null 2>&1") == 0;
}

static uint8_t hexnib(char c)
{
    return (uint8_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
}

/* Splits s at tabs into at most max fields (in place). */
static size_t split_tabs(char *s, char **f, size_t max)
{
    size_t n = 0;
    while (n < max) {
        f[n++] = s;
        char *t = strchr(s, '\t');
        if (!t)
            break;
        *t = '\0';
        s = t + 1;
    }
    return n;
}

Test(pcap, tshark_reads_back_every_frame, .timeout = 120)
{
    if (!have_tshark())
        cr_skip_test("tshark is not installed");
    char path[] = "/tmp/spc-pcap-tshark-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);

    char json[512], err[1024];
    snprintf(json, sizeof json,
             "{\"transport\": \"pcap\", \"options\": {\"path\": \"%s\", \"endpoints\": "
             "[\"239.10.128.7:7148\", \"10.1.1.2:7149\"], \"source_address\": \"10.1.1.1\", "
             "\"source_port\": 45678, \"source_mac\": \"02:11:22:33:44:55\", "
             "\"destination_mac\": \"02:66:77:88:99:aa\", \"ttl\": 200}}", path);
    struct spc_stream *s;
    cr_assert_eq(spc_stream_open_json(&s, json, NULL, err, sizeof err), 0, "%s", err);
    struct spc_heap *heaps[N_HEAPS];
    uint8_t *data[N_HEAPS];
    for (int i = 0; i < N_HEAPS; i++) {
        cr_assert_eq(spc_heap_create(&heaps[i], NULL), 0);
        data[i] = malloc(heap_sizes[i] + 1);
        for (size_t k = 0; k < heap_sizes[i]; k++)
            data[i][k] = (uint8_t)(k * 31 + i);
        cr_assert_eq(spc_heap_add_item(heaps[i], 0x1000, data[i], heap_sizes[i], false), 0);
        cr_assert_eq(spc_heap_add_inline(heaps[i], 0x1001, (uint64_t)i), 0);
        struct spc_heap_ref ref = SPC_HEAP_REF(heaps[i]);
        ref.cnt = 100 + (uint64_t)i;
        ref.substream = (uint32_t)(i % 2);
        cr_assert_eq(spc_stream_send_sync(s, &ref, NULL), 0);
    }
    spc_stream_close(s);

    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "tshark -n -r '%s' -o ip.check_checksum:TRUE -T fields -E separator=/t "
             "-e frame.number -e eth.type -e eth.src -e eth.dst -e ip.src -e ip.dst -e ip.ttl "
             "-e ip.flags.df -e ip.checksum.status -e udp.srcport -e udp.dstport "
             "-e udp.length -e udp.payload -e _ws.malformed -e _ws.expert.message "
             "-e frame.protocols "
             "2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    struct spc_decoder *dec[2];
    cr_assert_eq(spc_decoder_create(&dec[0], NULL), 0);
    cr_assert_eq(spc_decoder_create(&dec[1], NULL), 0);
    size_t cap = 1 << 18, frames = 0;
    char *line = malloc(cap);
    uint8_t *payload = malloc(cap / 2);
    while (fgets(line, (int)cap, p)) {
        line[strcspn(line, "\n")] = '\0';
        char *f[16];
        size_t nf = split_tabs(line, f, 16);
        cr_assert_eq(nf, 16, "frame %zu: %zu fields", frames + 1, nf);
        frames++;
        cr_assert_eq(strtoul(f[0], NULL, 10), frames);
        cr_assert_str_eq(f[1], "0x0800");
        cr_assert_str_eq(f[2], "02:11:22:33:44:55");
        cr_assert_str_eq(f[4], "10.1.1.1");
        cr_assert_str_eq(f[6], "200");
        cr_assert(strcmp(f[7], "1") == 0 || strcmp(f[7], "True") == 0, "DF: %s", f[7]);
        cr_assert(strcmp(f[8], "1") == 0 || strcmp(f[8], "Good") == 0,
                  "frame %zu IPv4 checksum status %s", frames, f[8]);
        cr_assert_str_eq(f[9], "45678");
        int sub;
        if (strcmp(f[5], "239.10.128.7") == 0) {
            sub = 0;
            cr_assert_str_eq(f[3], "01:00:5e:0a:80:07", "multicast MAC");
            cr_assert_str_eq(f[10], "7148");
        } else {
            sub = 1;
            cr_assert_str_eq(f[5], "10.1.1.2");
            cr_assert_str_eq(f[3], "02:66:77:88:99:aa");
            cr_assert_str_eq(f[10], "7149");
        }
        cr_assert_eq(f[13][0], '\0', "frame %zu malformed", frames);
        cr_assert_eq(f[14][0], '\0', "frame %zu has expert notes: %s", frames, f[14]);
        cr_assert_str_eq(f[15], "eth:ethertype:ip:udp:data", "frame %zu", frames);
        size_t hex = strlen(f[12]);
        cr_assert_eq(hex % 2, 0);
        for (size_t k = 0; k < hex / 2; k++)
            payload[k] = (uint8_t)(hexnib(f[12][2 * k]) << 4 | hexnib(f[12][2 * k + 1]));
        cr_assert_eq(strtoul(f[11], NULL, 10), hex / 2 + 8, "UDP length");
        int rc = spc_decoder_add_packet(dec[sub], payload, hex / 2, NULL);
        cr_assert_eq(rc, 0, "frame %zu payload: %s", frames, spc_strerror(rc));
    }
    int status = pclose(p);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "tshark failed (%d)", status);

    size_t want_frames = 0;
    for (int i = 0; i < N_HEAPS; i++) {
        struct spc_packetizer pz;
        cr_assert_eq(spc_packetizer_init(&pz, heaps[i], 100 + (uint64_t)i, 1472), 0);
        want_frames += spc_packetizer_count(&pz);
    }
    cr_assert_eq(frames, want_frames, "%zu frames, %zu packets sent", frames, want_frames);

    int seen = 0;
    for (int sub = 0; sub < 2; sub++) {
        struct spc_decoded_heap *d;
        while (spc_decoder_pop(dec[sub], &d) == 1) {
            int i = (int)d->cnt - 100;
            cr_assert(i >= 0 && i < N_HEAPS && i % 2 == sub, "heap %llu on substream %d",
                      (unsigned long long)d->cnt, sub);
            cr_assert(d->complete);
            cr_assert_eq(d->n_items, 2);
            cr_assert_eq(d->items[0].id, 0x1000);
            cr_assert_eq(d->items[0].len, heap_sizes[i]);
            if (heap_sizes[i])
                cr_assert_arr_eq(d->items[0].data, data[i], heap_sizes[i]);
            cr_assert_eq(d->items[1].value, (uint64_t)i);
            seen |= 1 << i;
            spc_decoded_heap_free(d);
        }
    }
    cr_assert_eq(seen, (1 << N_HEAPS) - 1, "every heap decoded (mask %#x)", seen);

    spc_decoder_destroy(dec[0]);
    spc_decoder_destroy(dec[1]);
    for (int i = 0; i < N_HEAPS; i++) {
        spc_heap_destroy(heaps[i]);
        free(data[i]);
    }
    free(line);
    free(payload);
    unlink(path);
}

/* A damaged checksum is what tshark would report: proves the check above can fail. */
Test(pcap, tshark_flags_a_bad_checksum, .timeout = 120)
{
    if (!have_tshark())
        cr_skip_test("tshark is not installed");
    char path[] = "/tmp/spc-pcap-bad-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    char json[512], err[1024];
    snprintf(json, sizeof json,
             "{\"transport\": \"pcap\", \"options\": {\"path\": \"%s\", \"endpoints\": "
             "[\"10.1.1.2:7149\"]}}", path);
    struct spc_stream *s;
    cr_assert_eq(spc_stream_open_json(&s, json, NULL, err, sizeof err), 0, "%s", err);
    struct spc_heap *h;
    cr_assert_eq(spc_heap_create(&h, NULL), 0);
    cr_assert_eq(spc_heap_add_inline(h, 0x1001, 5), 0);
    cr_assert_eq(spc_stream_send_sync(s, &SPC_HEAP_REF(h), NULL), 0);
    spc_stream_close(s);
    spc_heap_destroy(h);
    /* Flip a bit of the IPv4 source address (file header 24 + record 16 + 14 + 12). */
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    fseek(f, 24 + 16 + 14 + 12, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 24 + 16 + 14 + 12, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "tshark -n -r '%s' -o ip.check_checksum:TRUE -T fields -e ip.checksum.status "
             "2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    char out[64] = "";
    cr_assert_not_null(fgets(out, sizeof out, p));
    pclose(p);
    out[strcspn(out, "\n")] = '\0';
    cr_assert(strcmp(out, "0") == 0 || strcmp(out, "Bad") == 0, "status %s", out);
    unlink(path);
}
