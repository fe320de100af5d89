"""Descriptors, items and item groups (spead2's Descriptor, Item, ItemGroup).

Values live in numpy arrays. An item whose dtype (or whose format, when every field is
a whole numpy type) already has the wire layout is handed to heaps as the array itself,
so Heap.add_item references it without a copy; other formats are bit-packed here once
per value change, never per packet.
"""

import ast
import math
import struct

import numpy as np

from . import _speadcast

# Item IDs handed out by ItemGroup.add_item(None, ...) start here.
FIRST_AUTO_ID = 0x1000

_FORMAT_DTYPES = {
    ('u', 8): '>u1', ('u', 16): '>u2', ('u', 32): '>u4', ('u', 64): '>u8',
    ('i', 8): '>i1', ('i', 16): '>i2', ('i', 32): '>i4', ('i', 64): '>i8',
    ('f', 32): '>f4', ('f', 64): '>f8', ('c', 8): 'S1', ('b', 8): '?',
}


def _check_format(fmt):
    out = []
    for field in fmt:
        code, bits = field
        code = str(code)
        bits = int(bits)
        if bits == 0:
            raise ValueError('zero-length field (bug_compat mismatch?)')
        legal = ((code in 'ui' and 1 <= bits <= 64) or (code == 'b' and 1 <= bits <= 64)
                 or (code == 'f' and bits in (32, 64)) or (code == 'c' and bits == 8))
        if len(code) != 1 or not legal:
            raise ValueError('illegal format ({}, {})'.format(code, bits))
        out.append((code, bits))
    if not out:
        raise ValueError('format must have at least one field')
    return out


def _format_dtype(fmt):
    """The numpy dtype with the wire layout of a format, or None when bits must be packed."""
    parts = [_FORMAT_DTYPES.get(f) for f in fmt]
    if any(p is None for p in parts):
        return None
    if len(parts) == 1:
        return np.dtype(parts[0])
    return np.dtype([('f{}'.format(i), p) for i, p in enumerate(parts)])


def _parse_dtype(text):
    """A numpy dtype from the descr text the wire carries ("<u2" or a structured repr)."""
    if text.startswith('['):
        return np.dtype(ast.literal_eval(text))
    return np.dtype(text)


def _descr_text(dtype):
    descr = np.lib.format.dtype_to_descr(dtype)
    return descr if isinstance(descr, str) else repr(descr)


class Descriptor:
    """Metadata of an item: ID, name, description, shape and a numpy dtype or a format."""

    def __init__(self, id, name, description, shape, dtype=None, order='C', format=None):
        shape = tuple(None if d is None else int(d) for d in shape)
        if sum(1 for d in shape if d is None) > 1:
            raise ValueError('Cannot have multiple unknown dimensions')
        if any(d is not None and d < 0 for d in shape):
            raise ValueError('shape {} has a negative size'.format(shape))
        if order not in ('C', 'F'):
            raise ValueError("order must be 'C' or 'F'")
        if dtype is not None and format is not None:
            raise ValueError('Only one of dtype and format may be specified')
        if dtype is None and format is None:
            raise ValueError('One of dtype and format must be specified')
        if dtype is not None:
            dtype = np.dtype(dtype)
            if None in shape:
                raise ValueError('Cannot have unknown dimensions when using numpy descriptor')
            if dtype.itemsize == 0:
                raise ValueError('dtype {} has no size'.format(dtype))
            format = None
        else:
            if order != 'C':
                raise ValueError("When specifying format, order must be 'C'")
            format = _check_format(format)
        self.id = id
        self.name = name
        self.description = description
        self.shape = shape
        self.dtype = dtype
        self.order = order
        self.format = format
        # The numpy dtype values are held in: the item's own, or the format's when it
        # maps onto whole numpy types; None = bit-packed.
        self._internal_dtype = dtype if dtype is not None else _format_dtype(format)

    @property
    def itemsize_bits(self):
        if self.dtype is not None:
            return self.dtype.itemsize * 8
        return sum(bits for _, bits in self.format)

    def is_variable_size(self):
        return None in self.shape

    def allow_immediate(self):
        """Whether a value may travel as an immediate (as spead2 decides)."""
        return not self.is_variable_size() and self.itemsize_bits % 8 == 0

    def dynamic_shape(self, max_elements):
        """The shape with the variable dimension filled for max_elements elements."""
        known = 1
        for d in self.shape:
            if d is not None:
                known *= d
        if None not in self.shape:
            return self.shape
        var = max_elements // known if known else 0
        return tuple(var if d is None else d for d in self.shape)

    def compatible_shape(self, shape):
        if len(shape) != len(self.shape):
            return False
        return all(want is None or want == got for want, got in zip(self.shape, shape))

    def _c_descriptor(self):
        dtype = _descr_text(self.dtype) if self.dtype is not None else None
        return (self.id, self.name, self.description, self.shape, self.format, dtype,
                self.order == 'F')

    @classmethod
    def from_raw(cls, raw, bug_compat=0):
        """A Descriptor from the value bytes of a received item 5."""
        id_, name, description, shape, fmt, dtype, fortran = \
            _speadcast.parse_descriptor(raw, bug_compat)
        if dtype is not None:
            return cls(id_, name, description, shape, _parse_dtype(dtype),
                       'F' if fortran else 'C')
        return cls(id_, name, description, shape, format=fmt)

    def __repr__(self):
        return '{}(id={:#x}, name={!r}, shape={}, dtype={}, format={})'.format(
            type(self).__name__, self.id, self.name, self.shape, self.dtype, self.format)


def _pack_fields(fmt, records):
    """Bit-packs records (tuples, one number per field) MSB first into bytes."""
    acc = 0
    nbits = 0
    for rec in records:
        for (code, bits), v in zip(fmt, rec):
            if code == 'f':
                raw = struct.pack('>f' if bits == 32 else '>d', float(v))
                word = int.from_bytes(raw, 'big')
            elif code == 'c':
                word = v[0] if isinstance(v, (bytes, np.bytes_)) else ord(v)
            elif code == 'b':
                word = 1 if v else 0
            else:
                iv = int(v)
                lo, hi = (0, 1 << bits) if code == 'u' else (-(1 << (bits - 1)), 1 << (bits - 1))
                if not lo <= iv < hi:
                    raise ValueError('{} is out of range for {}{}'.format(iv, code, bits))
                word = iv & ((1 << bits) - 1)
            acc = (acc << bits) | word
            nbits += bits
    nbytes = (nbits + 7) // 8
    return (acc << (nbytes * 8 - nbits)).to_bytes(nbytes, 'big')


def _unpack_fields(fmt, raw, count):
    """The inverse of _pack_fields: count records from raw."""
    acc = int.from_bytes(raw, 'big')
    total = len(raw) * 8
    pos = 0
    out = []
    for _ in range(count):
        rec = []
        for code, bits in fmt:
            word = (acc >> (total - pos - bits)) & ((1 << bits) - 1)
            pos += bits
            if code == 'f':
                rec.append(struct.unpack('>f' if bits == 32 else '>d',
                                         word.to_bytes(bits // 8, 'big'))[0])
            elif code == 'c':
                rec.append(bytes([word]))
            elif code == 'b':
                rec.append(bool(word))
            elif code == 'i' and word >= 1 << (bits - 1):
                rec.append(word - (1 << bits))
            else:
                rec.append(word)
        out.append(tuple(rec))
    return out


class Item(Descriptor):
    """A descriptor with a value. version counts the value's changes."""

    def __init__(self, *args, value=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._value = None
        self._buffer = None
        self.version = 0
        if value is not None:
            self.set_value(value)

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, new_value):
        self.set_value(new_value)

    def set_value(self, value):
        if value is None:
            raise ValueError('Item value cannot be set to None')
        self._buffer = self._to_wire(value)
        self._value = value
        self.version += 1

    def _to_wire(self, value):
        dt = self._internal_dtype
        fmt = self.format
        if dt is not None and dt.kind == 'S' and isinstance(value, (str, bytes)):
            raw = value.encode('ascii') if isinstance(value, str) else value
            value = np.frombuffer(raw, dtype='S1')
        if dt is not None:
            a = np.asarray(value, dtype=dt)
            if not self.compatible_shape(a.shape):
                raise ValueError('Value has shape {}, expected {}'.format(a.shape, self.shape))
            # Zero copy when the array already has the wire layout.
            return np.require(a, requirements=self.order)
        if len(fmt) == 1:
            a = np.asarray(value, dtype=object)
            shape = a.shape
            records = [(v,) for v in a.reshape(-1)]
        else:
            # Records are tuples: the array has one more axis, the fields.
            a = np.array(value, dtype=object)
            if a.ndim == 0 or a.shape[-1] != len(fmt):
                raise ValueError('Value has shape {}, expected {} records of {} fields'.format(
                    a.shape, self.shape, len(fmt)))
            shape = a.shape[:-1]
            records = [tuple(r) for r in a.reshape(-1, len(fmt))]
        if not self.compatible_shape(shape):
            raise ValueError('Value has shape {}, expected {}'.format(shape, self.shape))
        return np.frombuffer(_pack_fields(fmt, records), dtype=np.uint8)

    def to_buffer(self):
        """The value's wire bytes as a buffer (the array itself where possible)."""
        if self._buffer is None:
            raise ValueError('Item {!r} has no value'.format(self.name))
        return self._buffer

    def set_from_raw(self, raw, immediate=False):
        """Sets the value from received bytes (immediates: the value right-aligned)."""
        bits = self.itemsize_bits
        if self.is_variable_size():
            count = (len(raw) * 8) // bits if bits else 0
        else:
            count = math.prod(self.shape)
            nbytes = (count * bits + 7) // 8
            if immediate:
                raw = raw[max(0, len(raw) - nbytes):]
            raw = raw[:nbytes]
            if len(raw) < nbytes:
                raise ValueError('item {!r}: {} bytes received, {} expected'.format(
                    self.name, len(raw), nbytes))
        shape = self.dynamic_shape(count)
        dt = self._internal_dtype
        if dt is not None:
            n = math.prod(shape)
            a = np.frombuffer(raw, dtype=dt, count=n).reshape(shape, order=self.order)
            if dt.kind == 'S' and self.format == [('c', 8)] and len(shape) == 1:
                value = a.tobytes().decode('ascii')
            elif shape == ():
                value = a[()]
            else:
                value = a
        else:
            n = math.prod(shape)
            recs = _unpack_fields(self.format, raw, n)
            if len(self.format) == 1:
                flat = [r[0] for r in recs]
                value = flat[0] if shape == () else np.array(flat).reshape(shape)
            else:
                value = recs[0] if shape == () else recs
        self._value = value
        self._buffer = None
        self.version += 1


class ItemGroup:
    """Items by name and by ID, in the order they were added (a replacement goes last)."""

    def __init__(self):
        self._by_id = {}
        self._by_name = {}

    def _add_item(self, item):
        old = self._by_id.get(item.id)
        if (old is not None and old.name == item.name and old.description == item.description
                and old.shape == item.shape and old.dtype == item.dtype
                and old.order == item.order and old.format == item.format):
            # Same descriptor: keep the item, take the new value if there is one.
            if item.value is not None:
                old.value = item.value
            return old
        if old is not None:
            del self._by_name[old.name]
            del self._by_id[old.id]
        by_name = self._by_name.get(item.name)
        if by_name is not None:
            del self._by_id[by_name.id]
            del self._by_name[by_name.name]
        self._by_id[item.id] = item
        self._by_name[item.name] = item
        return item

    def add_item(self, id, name, description, shape, dtype=None, order='C', format=None,
                 value=None):
        if id is None:
            id = FIRST_AUTO_ID
            while id in self._by_id:
                id += 1
        item = Item(id, name, description, shape, dtype, order, format, value=value)
        return self._add_item(item)

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._by_name[key]
        return self._by_id[key]

    def __contains__(self, key):
        if isinstance(key, str):
            return key in self._by_name
        return key in self._by_id

    def __len__(self):
        return len(self._by_name)

    def keys(self):
        return self._by_name.keys()

    def ids(self):
        return self._by_id.keys()

    def values(self):
        return self._by_name.values()

    def items(self):
        return self._by_name.items()

    def update(self, heap):
        """Applies a received heap (speadcast.recv.Heap): descriptors first, then values.
        Returns {name: item} of the items whose value changed."""
        for desc in heap.get_descriptors():
            self._add_item(Item(desc.id, desc.name, desc.description, desc.shape, desc.dtype,
                                desc.order, desc.format))
        updated = {}
        for raw in heap.get_items():
            if raw.id == _speadcast.DESCRIPTOR_ID or raw.id == _speadcast.STREAM_CTRL_ID:
                continue
            item = self._by_id.get(raw.id)
            if item is None:
                continue
            item.set_from_raw(raw.value, raw.is_immediate)
            updated[item.name] = item
        return updated
