"""Programs written for spead2.send, run with only their imports changed: a sync sender
and an asyncio sender in the style of spead2's documentation, received back."""

import asyncio
import socket

import numpy as np


def _receiver():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.bind(('127.0.0.1', 0))
    rx.settimeout(5)
    return rx


def _collect(rx, n_heaps):
    import speadcast
    import speadcast.recv
    heaps = []
    while len(heaps) < n_heaps:
        heaps.extend(speadcast.recv.decode_bytes(rx.recv(65536)))
    ig = speadcast.ItemGroup()
    values = []
    for heap in heaps:
        if heap.is_end_of_stream():
            break
        ig.update(heap)
        values.append((ig['timestamp'].value, ig['adc_samples'].value.copy()))
    return heaps, values


def test_sync_program():
    rx = _receiver()
    port = rx.getsockname()[1]

    # ---- the spead2 program; only these two imports differ ----
    import speadcast as spead2
    import speadcast.send

    thread_pool = spead2.ThreadPool()
    stream = spead2.send.UdpStream(
        thread_pool, [("127.0.0.1", port)], spead2.send.StreamConfig(rate=1e7))
    del thread_pool
    shape = (40, 20)
    ig = spead2.send.ItemGroup(flavour=spead2.Flavour(4, 64, 48, 0))   # SPEAD-64-48
    item = ig.add_item(0x1234, 'adc_samples', 'a (40, 20) array of 8-bit samples', shape,
                       dtype=np.int8)
    ts = ig.add_item(0x1235, 'timestamp', 'sample counter', (), format=[('u', 48)])
    for i in range(3):
        item.value = np.full(shape, i, np.int8)
        ts.value = 1000 * i
        stream.send_heap(ig.get_heap())
    stream.send_heap(ig.get_end())
    # ---- end of the program ----

    heaps, values = _collect(rx, 4)
    assert [h.cnt for h in heaps] == [1, 2, 3, 4] and heaps[3].is_end_of_stream()
    assert all(h.heap_address_bits == 48 for h in heaps)
    assert [v[0] for v in values] == [0, 1000, 2000]
    for i, (_, samples) in enumerate(values):
        np.testing.assert_array_equal(samples, np.full(shape, i, np.int8))
    rx.close()


def test_asyncio_program():
    rx = _receiver()
    port = rx.getsockname()[1]

    # ---- the spead2 program; only these imports differ ----
    import speadcast as spead2
    import speadcast.send
    import speadcast.send.asyncio

    async def run():
        thread_pool = spead2.ThreadPool()
        stream = spead2.send.asyncio.UdpStream(
            thread_pool, [("127.0.0.1", port)], spead2.send.StreamConfig(rate=1e7))
        del thread_pool  # Make sure this doesn't crash anything
        shape = (40, 20)
        ig = spead2.send.ItemGroup()
        item = ig.add_item(0x1234, 'adc_samples', 'a (40, 20) array of 8-bit samples', shape,
                           dtype=np.int8)
        ts = ig.add_item(0x1235, 'timestamp', 'sample counter', (), format=[('u', 48)])
        futures = []
        for i in range(3):
            item.value = np.full(shape, i, np.int8)
            ts.value = 1000 * i
            futures.append(stream.async_send_heap(ig.get_heap()))
        futures.append(stream.async_send_heap(ig.get_end()))
        await asyncio.wait(futures)
        await stream.async_flush()
        return [f.result() for f in futures]
    sizes = asyncio.run(run())
    # ---- end of the program ----

    assert all(s > 0 for s in sizes)
    heaps, values = _collect(rx, 4)
    assert [v[0] for v in values] == [0, 1000, 2000]
    for i, (_, samples) in enumerate(values):
        np.testing.assert_array_equal(samples, np.full((40, 20), i, np.int8))
    rx.close()
