"""Zero copy (the heap sends what the array holds when the packets are built), the GIL
released while a send waits, and the small remaining API surface."""

import threading
import time

import numpy as np
import pytest

import speadcast
import speadcast.recv as recv
import speadcast.send as send
import speadcast.send.asyncio as saio


def test_array_is_referenced_not_copied():
    a = np.zeros(1000, dtype='<u4')
    ig = send.ItemGroup()
    ig.add_item(0x1000, 'a', '', a.shape, dtype=a.dtype, value=a)
    heap = ig.get_heap(descriptors='none')
    a[:] = 0xdeadbeef                      # after the heap was built, before the send
    stream = send.BytesStream(None)
    stream.send_heap(heap)
    a[:] = 1
    stream.send_heap(heap)                 # a reused heap sends the current contents
    first, second = recv.decode_bytes(stream.getvalue())
    assert np.all(np.frombuffer(first.get_items()[0].value, '<u4') == 0xdeadbeef)
    assert np.all(np.frombuffer(second.get_items()[0].value, '<u4') == 1)


def test_blocking_send_releases_the_gil():
    # 500 kB/s: a 200 kB heap takes ~0.4 s, during which this thread keeps running Python.
    stream = send.BytesStream(None, send.StreamConfig(rate=5e5, burst_size=0))
    ig = send.ItemGroup()
    ig.add_item(0x1000, 'a', '', (50000,), dtype='<u4', value=np.zeros(50000, '<u4'))
    heap = ig.get_heap(descriptors='none')
    done = threading.Event()
    t = threading.Thread(target=lambda: (stream.send_heap(heap), done.set()))
    ticks = 0
    t.start()
    deadline = time.monotonic() + 10
    while not done.is_set() and time.monotonic() < deadline:
        ticks += 1
    t.join(10)
    assert done.is_set()
    assert ticks > 1000, ticks
    with pytest.raises(RuntimeError, match='another thread'):
        # close() refuses while another thread is inside a call
        before = stream.stats['packets']
        t2 = threading.Thread(target=stream.send_heap, args=(heap,))
        t2.start()
        deadline = time.monotonic() + 10     # until t2's heap is on its way
        while stream.stats['packets'] == before and time.monotonic() < deadline:
            time.sleep(0.001)
        try:
            stream.close()
        finally:
            t2.join(10)
    stream.close()


def test_stream_properties_and_context_manager():
    with send.BytesStream(None) as stream:
        ig = send.ItemGroup()
        ig.add_item(0x1000, 'a', '', (), format=[('u', 8)], value=1)
        stream.send_heap(ig.get_heap())
        stats = stream.stats
        assert stats['heaps'] == 1 and stats['packets'] == 1 and stats['bytes'] > 0
        assert stream.last_error == ''
        assert stream.stream_config['max_heaps'] == 4
    assert stream.closed


def test_start_end_heaps_and_packet_generator():
    heap = send.Heap()
    heap.add_start()
    heap.add_end()
    (pkt,) = list(send.PacketGenerator(heap, 3, 1472))
    (h,) = recv.decode_bytes(pkt)
    assert h.cnt == 3 and h.is_start_of_stream() and h.is_end_of_stream()
    gen = send.PacketGenerator(heap, 4, 1472)
    assert iter(gen) is gen and gen.count() == 1
    assert len(list(gen)) == 1 and list(gen) == []


def test_unnamed_queues_are_distinct():
    a, b = speadcast.InprocQueue(), speadcast.InprocQueue()
    assert a.name != b.name
    assert speadcast.InprocQueue(a.name).name == a.name


@pytest.mark.asyncio
async def test_asyncio_ibv_no_device():
    cfg = send.UdpIbvConfig(endpoints=[('239.1.1.1', 7000)], interface_address='127.0.0.1')
    with pytest.raises(OSError, match='no RDMA device'):
        saio.UdpIbvStream(None, send.StreamConfig(), cfg)


def test_sync_queue_full_with_on_full_fail():
    # spead2's behaviour, chosen explicitly: a full queue fails the send at once.
    stream = send.BytesStream(None, send.StreamConfig(max_heaps=1, rate=5e5, burst_size=0,
                                                      on_full='fail'))
    ig = send.ItemGroup()
    ig.add_item(0x1000, 'a', '', (50000,), dtype='<u4', value=np.zeros(50000, '<u4'))
    heap = ig.get_heap(descriptors='none')
    t = threading.Thread(target=stream.send_heap, args=(heap,))
    t.start()
    deadline = time.monotonic() + 10
    while stream.stats['packets'] == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    with pytest.raises(OSError) as e:
        stream.send_heap(heap)
    t.join(10)
    assert e.value.errno == 105 and 'queue' in str(e.value)


def test_receiver_timeout_and_end():
    q = speadcast.InprocQueue()
    r = recv.InprocReceiver(q)
    with pytest.raises(TimeoutError):
        r.get(timeout=0.01)
    r.stop()
    assert q.stopped and r.get(timeout=1) is None
    with pytest.raises(ValueError):
        recv.decode_bytes(b'\x00' * 16)


def test_register_memory_and_strerror():
    from speadcast import _speadcast
    stream = send.BytesStream(None)
    buf = np.zeros(4096, np.uint8)
    stream.register_memory(buf)          # transports without registration: a no-op
    stream.register_memory(b'')          # empty: nothing to register
    with pytest.raises(TypeError):
        stream.register_memory(5)
    stream.close()
    with pytest.raises(ValueError, match='closed'):
        stream.register_memory(buf)
    assert 'queue' in _speadcast.strerror(_speadcast.ERR_QUEUE_FULL)
    assert _speadcast.strerror(-12)
