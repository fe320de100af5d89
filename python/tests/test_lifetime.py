"""Lifetimes and leaks: heaps and their arrays live exactly until their sends complete,
a heap dropped while in flight is still sent whole, busy heaps refuse changes, many
threads send at once, and 10^5 sends leave reference counts and tracemalloc flat."""

import array
import asyncio
import gc
import socket
import sys
import threading
import tracemalloc
import weakref

import numpy as np
import pytest

import speadcast
import speadcast.recv as recv
import speadcast.send as send
import speadcast.send.asyncio as saio

POOL = speadcast.ThreadPool()


def _heap_with_array(n, value):
    # array.array owns its memory and takes weak references; numpy wraps it without a
    # copy, so the heap references exactly this memory.
    a = array.array('I', [value]) * n
    assert a.itemsize == 4 and sys.byteorder == 'little'
    ig = send.ItemGroup()
    ig.add_item(0x1000, 'a', '', (n,), dtype='<u4', value=a)
    return ig.get_heap(descriptors='none'), weakref.ref(a)


@pytest.mark.asyncio
async def test_dropped_heap_is_sent_then_released():
    # 200 kB/s keeps the heap (80 kB) in flight for 0.4 s while Python drops every
    # reference to it.
    stream = saio.BytesStream(POOL, send.StreamConfig(rate=2e5, burst_size=0, max_heaps=4))
    heap, array_ref = _heap_with_array(20000, 0xabcd)
    heap_ref = weakref.ref(heap)
    fut = stream.async_send_heap(heap)
    del heap
    gc.collect()
    assert heap_ref() is not None and array_ref() is not None   # kept by the send
    assert not fut.done()
    await fut
    gc.collect()
    assert heap_ref() is None and array_ref() is None           # released after completion
    (h,) = recv.decode_bytes(stream.getvalue())
    assert h.complete
    (item,) = h.get_items()
    np.testing.assert_array_equal(np.frombuffer(item.value, '<u4'), 0xabcd)


def test_sync_send_releases_and_heap_keeps_array():
    stream = send.BytesStream(POOL)
    heap, array_ref = _heap_with_array(16, 1)
    gc.collect()
    assert array_ref() is not None                 # the heap references the array
    stream.send_heap(heap)
    heap_ref = weakref.ref(heap)
    del heap
    gc.collect()
    assert heap_ref() is None and array_ref() is None


def test_heap_list_keeps_heaps():
    heap, array_ref = _heap_with_array(16, 2)
    hl = send.HeapReferenceList([send.HeapReference(heap)])
    del heap
    gc.collect()
    part = hl[0:1]
    del hl
    gc.collect()
    assert array_ref() is not None                  # the slice keeps its root alive
    stream = send.BytesStream(POOL)
    stream.send_heaps(part, send.GroupMode.SERIAL)
    del part
    gc.collect()
    assert array_ref() is None


@pytest.mark.asyncio
async def test_busy_heap_refuses_changes():
    stream = saio.BytesStream(POOL, send.StreamConfig(rate=2e5, burst_size=0))
    heap, _ = _heap_with_array(20000, 3)
    fut = stream.async_send_heap(heap)
    with pytest.raises(RuntimeError, match='being sent'):
        heap.add_start()
    with pytest.raises(RuntimeError, match='being sent'):
        heap.repeat_pointers = True
    await fut
    heap.add_end()                                  # free again after completion
    gen = send.PacketGenerator(heap, 1, 1472)
    with pytest.raises(RuntimeError, match='being sent'):
        heap.add_start()
    list(gen)
    heap.add_start()


@pytest.mark.parametrize('transport', ['inproc', 'udp'])
def test_concurrent_senders(transport):
    threads, per = 4, 250
    heaps = []
    if transport == 'inproc':
        q = speadcast.InprocQueue()
        stream = send.InprocStream(POOL, [q], send.StreamConfig(max_heaps=2))
    else:
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        rx.bind(('127.0.0.1', 0))
        rx.settimeout(2)
        stream = send.UdpStream(POOL, [rx.getsockname()], send.StreamConfig(max_heaps=2))

        def read():     # drains the socket while the senders run
            try:
                while len(heaps) < threads * per:
                    heaps.extend(recv.decode_bytes(rx.recv(9000)))
            except socket.timeout:
                pass
        reader = threading.Thread(target=read)
        reader.start()
    errors = []

    def worker(t):
        try:
            for i in range(per):
                ig = send.ItemGroup()
                ig.add_item(0x1000, 'v', '', (), format=[('u', 32)], value=t * per + i)
                stream.send_heap(ig.get_heap(descriptors='none'))
        except Exception as e:      # noqa: BLE001 - reported below
            errors.append(e)
    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors
    stream.flush()
    if transport == 'inproc':
        q.stop()
        heaps = list(recv.InprocReceiver(q))
        assert len(heaps) == threads * per
    else:
        reader.join(30)
        rx.close()
        # UDP on loopback, read while sent: expect (nearly) everything.
        assert len(heaps) >= threads * per * 0.9
    cnts = {h.cnt for h in heaps}
    values = {int.from_bytes(h.get_items()[0].value[-4:], 'big') for h in heaps}
    assert len(cnts) == len(heaps) and len(values) == len(heaps)


def test_many_sends_stay_flat():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(('127.0.0.1', 0))             # bound, never read: the kernel drops the excess
    stream = send.UdpStream(POOL, [rx.getsockname()], send.StreamConfig())
    ig = send.ItemGroup()
    ig.add_item(0x1000, 'ts', '', (), format=[('u', 48)], value=0)
    ig.add_item(0x1001, 'data', '', (256,), dtype='<u4', value=np.zeros(256, '<u4'))
    heap = ig.get_heap()
    refs = send.HeapReferenceList([send.HeapReference(heap)] * 4)

    def burst(n):
        for _ in range(n):
            stream.send_heap(heap)
        for _ in range(n // 100):
            stream.send_heaps(refs, send.GroupMode.ROUND_ROBIN)
            stream.send_heaps([send.HeapReference(heap)], send.GroupMode.SERIAL)

    burst(1000)
    gc.collect()
    tracemalloc.start()
    rc_heap, rc_refs = sys.getrefcount(heap), sys.getrefcount(refs)
    objects = len(gc.get_objects())
    before = tracemalloc.get_traced_memory()[0]
    burst(100000)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert sys.getrefcount(heap) == rc_heap and sys.getrefcount(refs) == rc_refs
    assert abs(len(gc.get_objects()) - objects) < 50
    assert after - before < 64 * 1024
    rx.close()


def test_many_async_sends_stay_flat():
    async def run(n, stream, heap):
        pending = []
        for _ in range(n):
            pending.append(stream.async_send_heap(heap))
            if len(pending) == 32:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
        await stream.async_flush()

    async def main():
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(('127.0.0.1', 0))
        stream = saio.UdpStream(POOL, [rx.getsockname()], send.StreamConfig(max_heaps=64))
        heap, _ = _heap_with_array(256, 5)
        await run(1000, stream, heap)
        gc.collect()
        rc = sys.getrefcount(heap)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        await run(100000, stream, heap)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert sys.getrefcount(heap) == rc
        assert after - before < 64 * 1024
        stream.close()
        rx.close()
    asyncio.run(main())
