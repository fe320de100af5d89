"""spead2 streams send heaps of any flavour. Ours send one: without
StreamConfig(flavour=...), the first heap's flavour becomes the stream's (the stream is
reopened in it before anything is sent), so spead2 programs using SPEAD-64-48 heaps run
unchanged."""

import asyncio
import socket

import numpy as np
import pytest

import speadcast
import speadcast.recv as recv
import speadcast.send as send
import speadcast.send.asyncio as saio

F48 = speadcast.Flavour(heap_address_bits=48)


def heap_in(flavour, value=1):
    ig = send.ItemGroup(flavour=flavour)
    ig.add_item(0x1000, 'x', '', (), format=[('u', 32)], value=value)
    return ig.get_heap(descriptors='none')


def test_first_heap_sets_the_flavour():
    stream = send.BytesStream(None)
    assert stream._adaptive and stream.stream_config['flavour'] == (40, 0)
    stream.set_cnt_sequence(2**44, 1)            # carried over to the reopened stream
    stream.register_memory(np.zeros(64, np.uint8))
    stream.send_heap(heap_in(F48))
    assert stream.stream_config['flavour'] == (48, 0) and not stream._adaptive
    with pytest.raises(ValueError, match='fixed by its first send'):
        stream.send_heap(heap_in(speadcast.Flavour()))
    (h,) = recv.decode_bytes(stream.getvalue())
    assert h.cnt == 2**44 and h.heap_address_bits == 48


def test_explicit_flavour_is_kept():
    stream = send.BytesStream(None, send.StreamConfig(flavour=speadcast.Flavour()))
    assert not stream._adaptive
    with pytest.raises(ValueError, match='flavour'):
        stream.send_heap(heap_in(F48))


def test_group_and_list_adopt():
    refs = [send.HeapReference(heap_in(F48, i)) for i in range(3)]
    s1 = send.BytesStream(None)
    s1.send_heaps(refs, send.GroupMode.ROUND_ROBIN)
    s2 = send.BytesStream(None)
    s2.send_heaps(send.HeapReferenceList(refs)[1:], send.GroupMode.SERIAL)
    assert [h.cnt for h in recv.decode_bytes(s1.getvalue())] == [1, 2, 3]
    assert [h.heap_address_bits for h in recv.decode_bytes(s2.getvalue())] == [48, 48]


def test_udp_socket_form_adopts_after_the_caller_closed_its_socket():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(('127.0.0.1', 0))
    rx.settimeout(5)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stream = send.UdpStream(None, tx, [rx.getsockname()])
    tx.close()
    stream.send_heap(heap_in(F48, 7), cnt=2**47)
    (h,) = recv.decode_bytes(rx.recv(9000))
    assert h.cnt == 2**47 and h.heap_address_bits == 48
    rx.close()


def test_tcp_that_connected_itself_does_not_reconnect():
    srv = socket.socket()
    srv.bind(('127.0.0.1', 0))
    srv.listen(1)
    stream = send.TcpStream(None, [srv.getsockname()])
    assert not stream._adaptive
    with pytest.raises(ValueError, match='flavour'):
        stream.send_heap(heap_in(F48))
    stream.send_heap(heap_in(speadcast.Flavour()))
    stream.close()
    srv.close()


@pytest.mark.asyncio
async def test_asyncio_stream_adopts_and_watches_the_new_fd():
    q = speadcast.InprocQueue()
    stream = saio.InprocStream(None, [q])
    old_fd = stream._detach.peek()[2][1]
    sizes = await asyncio.gather(*(stream.async_send_heap(heap_in(F48, i)) for i in range(4)))
    assert all(s > 0 for s in sizes)
    # the new stream was opened before the old one closed: a different fd
    assert stream._detach.peek()[2][1] != old_fd
    assert stream.stream_config['flavour'] == (48, 0)
    await stream.async_flush()
    q.stop()
    assert [h.heap_address_bits for h in recv.InprocReceiver(q)] == [48] * 4
