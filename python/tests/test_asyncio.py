"""speadcast.send.asyncio: futures resolved through the completion fd, async_flush,
queue-full futures, TCP connect, from_config."""

import asyncio
import socket
import sys

import numpy as np
import pytest

import speadcast
import speadcast.recv as recv
import speadcast.send as send
import speadcast.send.asyncio as saio

POOL = speadcast.ThreadPool()


def heap_of(value, nbytes=4):
    ig = send.ItemGroup()
    ig.add_item(0x1000, 'x', '', (nbytes // 4,), dtype='>u4',
                value=np.full(nbytes // 4, value, '>u4'))
    return ig.get_heap(descriptors='none')


@pytest.mark.asyncio
async def test_async_send_heap_and_flush():
    q = speadcast.InprocQueue()
    stream = saio.InprocStream(POOL, [q], send.StreamConfig(max_heaps=64))
    heaps = [heap_of(i) for i in range(40)]
    futures = [stream.async_send_heap(h) for h in heaps[:32]]
    assert all(isinstance(f, asyncio.Future) for f in futures)
    sizes = await asyncio.gather(*futures)
    want = sum(len(p) for p in send.PacketGenerator(heaps[0], 1, 1472))
    assert sizes == [want] * 32
    later = [stream.async_send_heap(h, cnt=1000 + i) for i, h in enumerate(heaps[32:])]
    await stream.async_flush()
    assert all(f.done() for f in later)
    await stream.async_flush()          # nothing pending: resolves at once
    got = recv.InprocReceiver(q)
    q.stop()
    cnts = [h.cnt for h in got]
    assert cnts == list(range(1, 33)) + list(range(1000, 1008))


@pytest.mark.asyncio
async def test_async_send_heaps_and_lists():
    stream = saio.BytesStream(POOL, send.StreamConfig(max_heaps=8))
    refs = [send.HeapReference(heap_of(i), cnt=i + 1) for i in range(4)]
    n = await stream.async_send_heaps(refs, send.GroupMode.ROUND_ROBIN)
    hl = send.HeapReferenceList(refs)
    n2 = await stream.async_send_heaps(hl[2:], send.GroupMode.SERIAL)
    assert n2 * 2 == n
    got = recv.decode_bytes(stream.getvalue())
    assert [h.cnt for h in got] == [1, 2, 3, 4, 3, 4]
    with pytest.raises(OSError):
        stream.async_send_heaps([], send.GroupMode.SERIAL)


@pytest.mark.asyncio
async def test_async_errors_in_futures():
    # A slow rate keeps the first heap in the queue, so the second finds it full.
    stream = saio.BytesStream(POOL, send.StreamConfig(max_heaps=1, rate=1e6, burst_size=0))
    first = stream.async_send_heap(heap_of(1, 40000))
    second = stream.async_send_heap(heap_of(2))
    with pytest.raises(OSError) as e:
        await second
    assert e.value.errno == 105 and 'queue' in str(e.value)
    assert await first > 40000
    bad = stream.async_send_heap(heap_of(3), cnt=2**40)
    with pytest.raises(OSError) as e:
        await bad
    assert e.value.errno == 22
    with pytest.raises(ValueError, match='substream'):
        await stream.async_send_heap(heap_of(3), substream_index=5)
    stream.flush()


@pytest.mark.asyncio
async def test_tcp_connect_and_socket():
    srv = socket.socket()
    srv.bind(('127.0.0.1', 0))
    srv.listen(2)
    srv.setblocking(False)
    loop = asyncio.get_running_loop()
    port = srv.getsockname()[1]
    accept = asyncio.ensure_future(loop.sock_accept(srv))
    stream = await saio.TcpStream.connect(POOL, [('127.0.0.1', port)],
                                          send.StreamConfig(max_packet_size=8192))
    conn, _ = await asyncio.wait_for(accept, 10)
    n = await stream.async_send_heap(heap_of(5, 100000))
    stream.close()
    data = b''
    conn.setblocking(False)
    while len(data) < n:
        chunk = await asyncio.wait_for(loop.sock_recv(conn, 1 << 20), 10)
        assert chunk
        data += chunk
    conn.close()
    (heap,) = recv.decode_bytes(data)
    assert heap.complete
    closed = srv.getsockname()
    srv.close()
    with pytest.raises(ConnectionRefusedError):
        await saio.TcpStream.connect(POOL, [closed])


@pytest.mark.asyncio
async def test_asyncio_udp_and_from_config():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(('127.0.0.1', 0))
    rx.settimeout(5)
    port = rx.getsockname()[1]
    stream = saio.UdpStream(POOL, [('127.0.0.1', port)], send.StreamConfig())
    await stream.async_send_heap(heap_of(11))
    assert recv.decode_bytes(rx.recv(9000))[0].cnt == 1
    s2 = saio.from_config({'transport': 'udp',
                           'options': {'endpoints': ['127.0.0.1:{}'.format(port)]}})
    await s2.async_send_heap(heap_of(12), cnt=77)
    assert recv.decode_bytes(rx.recv(9000))[0].cnt == 77
    rx.close()
    sync = send.BytesStream(POOL)
    with pytest.raises(RuntimeError, match='asyncio'):
        sync.async_send_heap(heap_of(1))


@pytest.mark.asyncio
async def test_close_stops_watching_the_fd():
    loop = asyncio.get_running_loop()
    stream = saio.BytesStream(POOL)
    fd = stream._detach.peek()[2][1]
    assert loop._selector.get_key(fd) is not None
    f = stream.async_send_heap(heap_of(1))
    stream.close()                      # flushes: the future is resolved, the fd unwatched
    assert f.done() and f.result() > 0
    with pytest.raises(KeyError):
        loop._selector.get_key(fd)
    stream.close()
    with pytest.raises(ValueError, match='closed'):
        stream.async_send_heap(heap_of(1))


@pytest.mark.asyncio
async def test_blocking_asyncio_stream_waits_for_room():
    # on_full "block": a full queue makes the send wait (GIL released) instead of failing.
    stream = saio.BytesStream(POOL, send.StreamConfig(max_heaps=1, rate=1e7, burst_size=0,
                                                      on_full='block'))
    futures = [stream.async_send_heap(heap_of(i, 20000)) for i in range(3)]
    futures.append(stream.async_send_heaps([send.HeapReference(heap_of(9))],
                                           send.GroupMode.SERIAL))
    sizes = await asyncio.gather(*futures)
    assert all(s > 0 for s in sizes)
    assert [h.cnt for h in recv.decode_bytes(stream.getvalue())] == [1, 2, 3, 4]


def test_stream_outliving_its_loop():
    async def start():
        stream = saio.BytesStream(POOL, send.StreamConfig(rate=2e5, burst_size=0))
        quiet = stream.async_send_heap(heap_of(1, 40000))
        watched = stream.async_send_heap(heap_of(2, 4))
        watched.add_done_callback(lambda f: None)   # resolving it needs the loop
        return stream, quiet, watched
    stream, quiet, watched = asyncio.run(start())
    seen = []
    old, sys.unraisablehook = sys.unraisablehook, seen.append
    try:
        stream.close()          # completes both sends after their loop has closed
    finally:
        sys.unraisablehook = old
    assert quiet.result() > 40000
    assert len(seen) == 1 and 'closed' in str(seen[0].exc_value)
    assert stream.closed
