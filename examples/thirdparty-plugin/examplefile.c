/* "examplefile": a third-party speadcast transport that appends every packet to a file.
 *
 * Options: "path" (required) the file to write; "append" (default false) keeps what the
 * file already holds. One substream; reliable; each packet is written with one writev,
 * and a failed write fails only that packet (its heap), with the errno text recorded as
 * the stream's last error.
 *
 * Like every plugin it includes only speadcast/transport.h, reaches the core only through
 * t->svc, and exports only spc_transport_entry_v1.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "speadcast/transport.h"

struct ef_options {
    const char *path;
    bool append;
};

struct ef_transport {
    struct spc_transport base; /* first: the core's part */
    int fd;
    const char *path;          /* borrowed from the options, valid until close */
};

static const struct spc_option ef_option_table[] = {
    {SPC_OPTION_INIT, .name = "path", .type = SPC_OPT_STRING, .offset = offsetof(struct ef_options, path),
     .flags = SPC_OPT_REQUIRED, .min_count = 1, .help = "file the packets are written to"},
    {SPC_OPTION_INIT, .name = "append", .type = SPC_OPT_BOOL, .offset = offsetof(struct ef_options, append),
     .flags = SPC_OPT_DEFAULT, .def.b = false, .help = "keep the file's contents and append"},
};

static int ef_open(struct spc_transport *t, const void *options, const struct spc_transport_params *params)
{
    (void)params;
    struct ef_transport *ef = spc_container_of(t, struct ef_transport, base);
    const struct ef_options *o = options;
    ef->path = o->path;
    ef->fd = open(o->path, O_WRONLY | O_CREAT | O_CLOEXEC | (o->append ? O_APPEND : O_TRUNC), 0644);
    if (ef->fd < 0) {
        int e = errno;
        t->svc->set_error(t, "%s: %s", o->path, strerror(e));
        return -e;
    }
    t->svc->log(t, SPC_LOG_INFO, "writing packets to %s", o->path);
    return 0;
}

static void ef_close(struct spc_transport *t)
{
    close(spc_container_of(t, struct ef_transport, base)->fd);
}

static int ef_send(struct spc_transport *t, struct spc_tx_batch *batch)
{
    struct ef_transport *ef = spc_container_of(t, struct ef_transport, base);
    for (size_t i = 0; i < batch->n_packets; i++) {
        struct spc_tx_packet *p = spc_tx_batch_packet(batch, i);
        ssize_t n;
        do
            n = writev(ef->fd, p->iov, (int)p->n_iov);
        while (n < 0 && errno == EINTR);
        if (n < 0 || (size_t)n != p->size) {
            int e = n < 0 ? errno : EIO;
            t->svc->set_error(t, "%s: %s", ef->path, n < 0 ? strerror(e) : "short write");
            p->status = -e;
        } else {
            p->status = 0;
        }
    }
    return 0;
}

static const struct spc_transport_ops ef_ops = {
    SPC_TRANSPORT_OPS_INIT,
    .open = ef_open,
    .close = ef_close,
    .send = ef_send,
};

static const struct spc_transport_descriptor ef_descriptor = {
    SPC_TRANSPORT_DESCRIPTOR_INIT,
    .name = "examplefile",
    .version = "1.0.0",
    .description = "example third-party transport: appends packets to a file",
    .caps = SPC_TRANSPORT_CAP_RELIABLE,
    .options = ef_option_table,
    .n_options = sizeof ef_option_table / sizeof ef_option_table[0],
    .options_size = sizeof(struct ef_options),
    .object_size = sizeof(struct ef_transport),
    .max_substreams = 1,
    .ops = &ef_ops,
};

SPC_TRANSPORT_DEFINE(ef_descriptor)
