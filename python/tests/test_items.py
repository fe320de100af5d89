"""Flavour, constants, Descriptor, Item, ItemGroup, HeapGenerator: behaviour and errors
(spead2's exception types and texts)."""

import numpy as np
import pytest

import speadcast
import speadcast.recv as recv
import speadcast.send as send


def test_flavour_arguments_and_equality():
    a = speadcast.Flavour(4, 64, 48, 0)
    b = speadcast.Flavour(version=4, item_pointer_bits=64, heap_address_bits=48)
    assert a == b and hash(a) == hash(b)
    assert a != speadcast.Flavour()
    assert (a.version, a.item_pointer_bits, a.heap_address_bits, a.bug_compat) == (4, 64, 48, 0)
    assert speadcast.Flavour().heap_address_bits == 40
    assert 'heap_address_bits=48' in repr(a)

    class Mine(speadcast.Flavour):
        pass
    m = Mine(heap_address_bits=48)
    assert m == a
    heap = send.Heap(m)
    assert heap.flavour is m


@pytest.mark.parametrize('kwargs,text', [
    ({'heap_address_bits': 44}, 'heap_address_bits not a multiple of 8'),
    ({'heap_address_bits': 64}, 'heap_address_bits out of range'),
    ({'heap_address_bits': 0}, 'heap_address_bits out of range'),
    ({'item_pointer_bits': 48}, 'item_pointer_bits not supported'),
    ({'version': 3}, 'version is not supported'),
    ({'bug_compat': 8}, 'bug_compat has unknown flags'),
])
def test_flavour_errors(kwargs, text):
    with pytest.raises(ValueError, match=text):
        speadcast.Flavour(**kwargs)


def test_constants():
    assert (speadcast.NULL_ID, speadcast.HEAP_CNT_ID, speadcast.HEAP_LENGTH_ID,
            speadcast.PAYLOAD_OFFSET_ID, speadcast.PAYLOAD_LENGTH_ID, speadcast.DESCRIPTOR_ID,
            speadcast.STREAM_CTRL_ID) == (0, 1, 2, 3, 4, 5, 6)
    assert (speadcast.DESCRIPTOR_NAME_ID, speadcast.DESCRIPTOR_DESCRIPTION_ID,
            speadcast.DESCRIPTOR_SHAPE_ID, speadcast.DESCRIPTOR_FORMAT_ID,
            speadcast.DESCRIPTOR_ID_ID, speadcast.DESCRIPTOR_DTYPE_ID) == (
                0x10, 0x11, 0x12, 0x13, 0x14, 0x15)
    assert (speadcast.CTRL_STREAM_START, speadcast.CTRL_DESCRIPTOR_REISSUE,
            speadcast.CTRL_STREAM_STOP, speadcast.CTRL_DESCRIPTOR_UPDATE) == (0, 1, 2, 3)
    assert (speadcast.BUG_COMPAT_DESCRIPTOR_WIDTHS, speadcast.BUG_COMPAT_SHAPE_BIT_1,
            speadcast.BUG_COMPAT_SWAP_ENDIAN, speadcast.BUG_COMPAT_PYSPEAD_0_5_2) == (1, 2, 4, 7)


@pytest.mark.parametrize('kwargs,text', [
    ({'shape': (None,), 'dtype': '<u2'},
     'Cannot have unknown dimensions when using numpy descriptor'),
    ({'shape': (3,), 'format': [('u', 8)], 'order': 'F'},
     "When specifying format, order must be 'C'"),
    ({'shape': (None, None), 'format': [('u', 8)]}, 'Cannot have multiple unknown dimensions'),
    ({'shape': (), 'format': [('f', 16)]}, r'illegal format \(f, 16\)'),
    ({'shape': (), 'format': [('c', 16)]}, r'illegal format \(c, 16\)'),
    ({'shape': (), 'format': [('u', 0)]}, r'zero-length field \(bug_compat mismatch\?\)'),
    ({'shape': (), 'format': [('u', 8)], 'dtype': '<u1'}, 'Only one of dtype and format'),
    ({'shape': ()}, 'One of dtype and format'),
    ({'shape': (3,), 'dtype': '<u1', 'order': 'X'}, "order must be 'C' or 'F'"),
])
def test_descriptor_errors(kwargs, text):
    with pytest.raises(ValueError, match=text):
        speadcast.Descriptor(0x1000, 'x', 'desc', **kwargs)


def test_descriptor_properties():
    d = speadcast.Descriptor(0x1000, 'x', 'desc', (None,), format=[('c', 8)])
    assert d.is_variable_size() and not d.allow_immediate()
    assert d.dynamic_shape(13) == (13,)
    d = speadcast.Descriptor(0x1000, 'x', 'desc', (5,), format=[('u', 7)])
    assert not d.allow_immediate() and d.itemsize_bits == 7
    d = speadcast.Descriptor(0x1000, 'x', 'desc', (2, 3), dtype='<u2', order='F')
    assert d.allow_immediate() and d.dtype == np.dtype('<u2') and d.order == 'F'
    assert d.compatible_shape((2, 3)) and not d.compatible_shape((3, 2))


@pytest.mark.parametrize('shape,fmt,dtype,value,exc,text', [
    ((3,), None, '<u2', None, ValueError, 'Item value cannot be set to None'),
    ((3,), None, '<u2', [1, 2], ValueError, r'Value has shape \(2,\), expected \(3,\)'),
    ((2,), [('i', 12), ('u', 4)], None, [(1, 16), (0, 0)], ValueError,
     '16 is out of range for u4'),
    ((), [('u', 40)], None, 2**40 + 5, ValueError, 'out of range for u40'),
    ((), [('i', 12), ('u', 4)], None, 5, ValueError, 'records of 2 fields'),
])
def test_item_value_errors(shape, fmt, dtype, value, exc, text):
    item = speadcast.Item(0x1000, 'x', '', shape, dtype=dtype, format=fmt)
    with pytest.raises(exc, match=text):
        item.value = value
    assert item.version == 0 and item.value is None
    with pytest.raises(ValueError, match='has no value'):
        item.to_buffer()


def test_item_zero_copy_and_version():
    a = np.arange(12, dtype='<i4').reshape(3, 4)
    item = speadcast.Item(0x1000, 'a', '', (3, 4), dtype='<i4', value=a)
    assert item.version == 1
    buf = item.to_buffer()
    assert buf is a                       # already the wire layout: not copied
    assert np.shares_memory(buf, a)
    item.value = a.T.copy().T              # Fortran-ordered: a C copy is made
    assert item.version == 2 and item.to_buffer().flags.c_contiguous
    f = speadcast.Item(0x1001, 'f', '', (3, 4), dtype='<i4', order='F')
    fa = np.asfortranarray(a)
    f.value = fa
    assert f.to_buffer() is fa
    assert f.to_buffer().flags.f_contiguous


def test_item_format_fast_path_big_endian():
    item = speadcast.Item(0x1000, 'x', '', (2,), format=[('u', 16)], value=[1, 0x203])
    assert bytes(item.to_buffer()) == b'\x00\x01\x02\x03'
    item = speadcast.Item(0x1000, 'x', '', (10,), format=[('b', 1)], value=[1, 0] * 5)
    assert bytes(item.to_buffer()) == b'\xaa\x80'


def test_item_group_lookup_and_replacement():
    ig = speadcast.ItemGroup()
    a = ig.add_item(None, 'a', 'first', (), format=[('u', 8)], value=1)
    b = ig.add_item(None, 'b', 'second', (), format=[('u', 8)])
    assert (a.id, b.id) == (0x1000, 0x1001)
    assert ig['a'] is a and ig[0x1001] is b and 'a' in ig and 0x1000 in ig and 'zz' not in ig
    assert list(ig.keys()) == ['a', 'b'] and list(ig.ids()) == [0x1000, 0x1001]
    assert list(ig.values()) == [a, b] and list(ig.items()) == [('a', a), ('b', b)]
    assert len(ig) == 2
    # Same descriptor again: the item stays, the value is taken.
    same = ig.add_item(0x1000, 'a', 'first', (), format=[('u', 8)], value=9)
    assert same is a and a.value == 9
    # A different descriptor with the same ID replaces it, at the end of the order.
    a2 = ig.add_item(0x1000, 'a', 'changed', (2,), format=[('u', 8)])
    assert a2 is not a and ig['a'] is a2 and list(ig.keys()) == ['b', 'a']
    # Same name, other ID: the old one goes.
    b2 = ig.add_item(0x2000, 'b', 'moved', (), format=[('u', 8)])
    assert ig['b'] is b2 and 0x1001 not in ig and list(ig.keys()) == ['a', 'b']
    with pytest.raises(KeyError):
        ig['nope']


def test_heap_generator_stale_and_frequency():
    ig = send.ItemGroup(descriptor_frequency=2)
    ig.add_item(0x1000, 'a', '', (), format=[('u', 32)], value=1)
    ig.add_item(0x1001, 'b', '', (), format=[('u', 32)], value=2)

    def ids(heap):
        stream = send.BytesStream(None)
        stream.send_heap(heap)
        (h,) = recv.decode_bytes(stream.getvalue())
        return [i.id for i in h.get_items()]

    assert ids(ig.get_heap()) == [5, 0x1000, 5, 0x1001]
    assert ids(ig.get_heap()) == []                         # nothing changed
    ig['a'].value = 3
    assert ids(ig.get_heap()) == [5, 0x1000, 5]             # frequency 2: descriptors again
    assert ids(ig.get_heap(descriptors='all', data='all')) == [5, 0x1000, 5, 0x1001]
    assert ids(ig.get_heap(descriptors='none', data='none')) == []
    assert ids(ig.get_start()) == [6] and ids(ig.get_end()) == [6]
    for bad in ({'descriptors': 'some'}, {'data': 'x'}):
        with pytest.raises(ValueError):
            ig.get_heap(**bad)
    with pytest.raises(ValueError):
        send.HeapGenerator(ig, descriptor_frequency=0)
    heap = send.Heap()
    gen = send.HeapGenerator(ig)
    assert gen.add_to_heap(heap) is heap and heap.n_items == 4


def test_heap_errors():
    heap = send.Heap(speadcast.Flavour(heap_address_bits=56))
    d = speadcast.Descriptor(0x80, 'x', '', (), format=[('u', 8)])
    with pytest.raises(ValueError, match='(?i)item ID out of range.*0x80'):
        heap.add_descriptor(d)
    item = speadcast.Item(0x80, 'x', '', (), format=[('u', 8)], value=1)
    with pytest.raises(ValueError, match='(?i)item ID out of range'):
        heap.add_item(item)
    item.id = -1
    with pytest.raises(ValueError, match='(?i)item ID out of range'):
        heap.add_item(item)
    with pytest.raises(ValueError, match='(?i)item ID out of range'):
        send.Heap().add_descriptor(speadcast.Descriptor(0, 'x', '', (), format=[('u', 8)]))
    with pytest.raises(AttributeError):
        send.Heap().add_item(5)
    heap = send.Heap()
    for i in range(10):
        heap.add_item(speadcast.Item(0x1000 + i, str(i), '', (), format=[('u', 8)], value=i))
    heap.repeat_pointers = True
    assert heap.repeat_pointers
    with pytest.raises(ValueError, match='repeat'):
        list(send.PacketGenerator(heap, 1, 128))
    with pytest.raises(ValueError, match='max_packet_size'):
        send.PacketGenerator(send.Heap(), 1, 55)
    with pytest.raises(OSError) as e:
        send.PacketGenerator(send.Heap(), 2**40, 1472)
    assert e.value.errno == 22
