"""Values sent through BytesStream and InprocStream, decoded by our decoder into an item
group, come back equal: numpy dtypes (structured, Fortran order), bit-packed formats,
strings, variable shapes, every flavour."""

import numpy as np
import pytest

import speadcast
import speadcast.recv as recv
import speadcast.send as send

ITEMS = [
    # (name, shape, dtype, order, format, value)
    ('u1', (5,), '<u1', 'C', None, np.arange(5, dtype='<u1')),
    ('bool', (3,), '?', 'C', None, np.array([True, False, True])),
    ('be_i8', (2, 2, 2), '>i8', 'C', None, -np.arange(8, dtype='>i8').reshape(2, 2, 2)),
    ('le_f4', (4,), '<f4', 'C', None, np.linspace(0, 1, 4, dtype='<f4')),
    ('c16', (), '>c16', 'C', None, np.complex128(1.5 - 2j)),
    ('c8', (3,), '<c8', 'C', None, np.array([1 + 2j, 3, -4j], dtype='<c8')),
    ('struct', (3,), [('a', '<u2'), ('b', '>f4')], 'C', None,
     np.array([(1, 0.5), (2, 1.5), (3, -2.0)], dtype=[('a', '<u2'), ('b', '>f4')])),
    ('fortran', (2, 3), '<u2', 'F', None, np.arange(6, dtype='<u2').reshape(2, 3)),
    ('fortran3', (2, 3, 4), '>i4', 'F', None, np.arange(24, dtype='>i4').reshape(2, 3, 4)),
    ('big', (48, 50), '<f8', 'C', None, np.arange(2400, dtype='<f8').reshape(48, 50)),
    ('u40', (), None, 'C', [('u', 40)], 0x123456789a),
    ('u48', (), None, 'C', [('u', 48)], 2**48 - 1),
    ('i24', (), None, 'C', [('i', 24)], -12345),
    ('i12u4', (4,), None, 'C', [('i', 12), ('u', 4)], [(-1, 15), (2047, 0), (-2048, 7), (0, 1)]),
    ('b1', (10,), None, 'C', [('b', 1)], [True, False] * 5),
    ('u7', (5,), None, 'C', [('u', 7)], [0, 1, 64, 127, 5]),
    ('f32', (3,), None, 'C', [('f', 32)], [1.5, -2.25, 1e10]),
    ('f64', (), None, 'C', [('f', 64)], 3.141592653589793),
    ('u16', (3,), None, 'C', [('u', 16)], [1, 2, 65535]),
    ('string', (None,), None, 'C', [('c', 8)], 'Hello, SPEAD!'),
    ('var_u32', (None, 2), None, 'C', [('u', 32)], np.arange(10).reshape(5, 2)),
]


def _group(flavour=speadcast.Flavour()):
    ig = send.ItemGroup(flavour=flavour)
    for i, (name, shape, dtype, order, fmt, value) in enumerate(ITEMS):
        ig.add_item(0x1000 + i, name, 'item ' + name, shape, dtype=dtype, order=order,
                    format=fmt, value=value)
    return ig


def _check(received):
    for name, shape, dtype, order, fmt, value in ITEMS:
        got = received[name].value
        want = value
        if fmt == [('c', 8)]:
            assert got == want
        elif fmt is not None and len(fmt) > 1:
            assert [tuple(r) for r in got] == [tuple(r) for r in want]
        else:
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=name)
        item = received[name]
        assert item.shape == shape
        if dtype is not None:
            assert item.dtype == np.dtype(dtype)
            assert item.order == order
        else:
            assert item.format == fmt


@pytest.mark.parametrize('hab,bug_compat', [(40, 0), (48, 0), (32, 0), (40, 7)])
def test_bytes_stream_roundtrip(hab, bug_compat):
    fl = speadcast.Flavour(heap_address_bits=hab, bug_compat=bug_compat)
    ig = _group(fl)
    stream = send.BytesStream(speadcast.ThreadPool(), send.StreamConfig(flavour=fl))
    stream.send_heap(ig.get_start())
    stream.send_heap(ig.get_heap())
    stream.send_heap(ig.get_end())
    heaps = recv.decode_bytes(stream.getvalue(), bug_compat)
    assert [h.cnt for h in heaps] == [1, 2, 3]
    assert heaps[0].is_start_of_stream() and heaps[2].is_end_of_stream()
    assert all(h.complete for h in heaps)
    received = speadcast.ItemGroup()
    received.update(heaps[1])
    assert sorted(received.keys()) == sorted(i[0] for i in ITEMS)
    _check(received)


def test_inproc_roundtrip():
    queue = speadcast.InprocQueue()
    receiver = recv.InprocReceiver(queue)
    ig = _group()
    stream = send.InprocStream(speadcast.ThreadPool(), [queue],
                               send.StreamConfig(max_packet_size=9000))
    assert stream.queues == (queue,) and stream.queue is queue
    stream.send_heap(ig.get_heap())
    ig['u40'].value = 77
    stream.send_heap(ig.get_heap())     # only the changed value
    stream.send_heap(ig.get_end())
    queue.stop()
    received = speadcast.ItemGroup()
    heaps = list(receiver)
    assert len(heaps) == 3
    assert received.update(heaps[0]).keys() == {i[0] for i in ITEMS}
    _check(received)
    assert list(received.update(heaps[1])) == ['u40']
    assert received['u40'].value == 77
    assert heaps[2].is_end_of_stream()


def test_inproc_substreams_and_named_queues():
    a, b = speadcast.InprocQueue('py-sub-a'), speadcast.InprocQueue('py-sub-b')
    assert a.name == 'py-sub-a' and not a.stopped
    stream = send.InprocStream(None, [a, b])
    assert stream.num_substreams == 2
    ig = send.ItemGroup()
    ig.add_item(None, 'x', '', (), format=[('u', 32)], value=7)
    stream.send_heap(ig.get_heap(), substream_index=1)
    stream.flush()
    assert len(a) == 0 and len(b) == 1
    pkt = b.pop()
    heaps = recv.decode_bytes(pkt)
    assert len(heaps) == 1 and heaps[0].complete
    assert a.pop() is None
    a.stop()
    assert a.stopped
