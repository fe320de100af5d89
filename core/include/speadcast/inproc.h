/* In-process packet queues (the inproc transport) and a receiver that turns their
 * packets back into heaps.
 *
 * A queue is named, unbounded and lives in the process: the inproc transport sends
 * each substream to one queue (several streams may send to the same queue), and a
 * receiver in the same process pops the packets. spc_inproc_queue_open returns the
 * queue of that name, creating it when none exists; a queue lives while anyone holds a
 * reference, so open the receiving end before the senders close, or the queue and its
 * packets go when the last sender lets go. Once no one holds it, the name is free and a
 * later open makes a fresh queue.
 *
 * A stopped queue refuses new packets (-SPC_ESTOPPED, which fails the heap being sent)
 * and, once its remaining packets have been popped, tells receivers the stream ended.
 *
 * Thread rules: queue functions are thread-safe. A receiver is used by one thread at a
 * time (it owns a decoder); different receivers may pop from the same queue at once.
 */
#ifndef SPEADCAST_INPROC_H
#define SPEADCAST_INPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "speadcast/decoder.h"
#include "speadcast/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest queue name, in bytes. */
#define SPC_INPROC_NAME_MAX 255

struct spc_inproc_queue;

/* One popped packet: size bytes at data. Owned by the caller; free with
 * spc_inproc_packet_free. */
struct spc_inproc_packet {
    size_t size;
    const uint8_t *data;
};

/* Returns in *out a new reference to the queue called name (1..SPC_INPROC_NAME_MAX
 * bytes, any characters but NUL), creating the queue when none of that name exists.
 * name is borrowed for the call. Errors: -EINVAL (NULL, empty or too long name),
 * -ENOMEM, -EMFILE/-ENFILE (no eventfd). */
int spc_inproc_queue_open(struct spc_inproc_queue **out, const char *name);

/* Drops a reference; the last one frees the queue and any packets left in it. q must
 * not be used afterwards by this holder. NULL is a no-op. */
void spc_inproc_queue_close(struct spc_inproc_queue *q);

/* The queue's name; borrowed while the caller holds a reference. */
const char *spc_inproc_queue_name(const struct spc_inproc_queue *q);

/* Appends one packet, copying its bytes (data or the n_iov pieces are borrowed for the
 * call). Errors: -SPC_ESTOPPED (the queue was stopped), -ENOMEM, -EINVAL (NULL with
 * len > 0, or n_iov > 0 with iov NULL). */
int spc_inproc_queue_push(struct spc_inproc_queue *q, const void *data, size_t len);
int spc_inproc_queue_pushv(struct spc_inproc_queue *q, const struct iovec *iov,
                           unsigned n_iov);

/* Takes the oldest packet into *out, waiting up to timeout_ms milliseconds for one
 * (0 = do not wait, negative = wait without limit). Returns 0 with a packet,
 * -EAGAIN when timeout_ms is 0 and the queue is empty, -ETIMEDOUT when the time
 * passed, -SPC_ESTOPPED when the queue is stopped and empty, -ENOMEM. */
int spc_inproc_queue_pop(struct spc_inproc_queue *q, struct spc_inproc_packet **out,
                         int timeout_ms);
void spc_inproc_packet_free(struct spc_inproc_packet *pkt);

/* Stops the queue: pushes fail from now on and receivers see the end once it is empty.
 * Idempotent; wakes every waiting pop. */
void spc_inproc_queue_stop(struct spc_inproc_queue *q);
bool spc_inproc_queue_stopped(const struct spc_inproc_queue *q);

/* Packets waiting in the queue. */
size_t spc_inproc_queue_length(const struct spc_inproc_queue *q);

/* An eventfd that is readable while the queue holds a packet or is stopped (level
 * triggered: a pop that empties a running queue makes it unreadable again). For poll,
 * select or epoll only: never read or write it, never close it. Valid while the caller
 * holds its reference. */
int spc_inproc_queue_fd(const struct spc_inproc_queue *q);

/* ------------------------------------------------------------------ receiver */

/* Pops packets from one queue and reassembles them with a decoder. */
struct spc_inproc_receiver;

/* Opens (creating if needed) the queue called name and a decoder with cfg (NULL =
 * SPC_DECODER_CONFIG_DEFAULT). The caller destroys the receiver. Errors: those of
 * spc_inproc_queue_open and spc_decoder_create. */
int spc_inproc_receiver_create(struct spc_inproc_receiver **out, const char *name,
                               const struct spc_decoder_config *cfg);

/* Drops the queue reference and frees the decoder and any heap not yet taken.
 * NULL is a no-op. */
void spc_inproc_receiver_destroy(struct spc_inproc_receiver *r);

/* The receiver's queue (borrowed while the receiver lives), e.g. to stop it. */
struct spc_inproc_queue *spc_inproc_receiver_queue(const struct spc_inproc_receiver *r);

/* The queue's eventfd (spc_inproc_queue_fd): readable when next may have work. A heap
 * already reassembled is returned by next without touching the queue, so call next
 * until -EAGAIN before sleeping on the fd. */
int spc_inproc_receiver_fd(const struct spc_inproc_receiver *r);

/* Returns the next heap in *out (owned by the caller: spc_decoded_heap_free), feeding
 * popped packets to the decoder until one is ready, waiting up to timeout_ms in all
 * (0 = do not wait, negative = no limit). Packets the decoder rejects are counted in the
 * stats and skipped. Every heap is returned, those carrying stream control items
 * included. Returns 0 with a heap; -EAGAIN (timeout_ms 0) or -ETIMEDOUT when none is
 * ready in time; -SPC_ESTOPPED once the queue is stopped and drained and every heap,
 * incomplete ones last (complete = false), has been returned; -ENOMEM. */
int spc_inproc_receiver_next(struct spc_inproc_receiver *r, struct spc_decoded_heap **out,
                             int timeout_ms);

/* The decoder's counters. */
void spc_inproc_receiver_stats(const struct spc_inproc_receiver *r,
                               struct spc_decoder_stats *out);

#ifdef __cplusplus
}
#endif

#endif
