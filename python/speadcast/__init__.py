"""speadcast: send SPEAD streams (spead2.send's Python API over the speadcast C library).

``import speadcast as spead2`` and ``import speadcast.send`` run spead2.send programs.
"""

import itertools
import os

from . import _speadcast
from ._speadcast import (  # re-exported, see __all__
    NULL_ID, HEAP_CNT_ID, HEAP_LENGTH_ID, PAYLOAD_OFFSET_ID, PAYLOAD_LENGTH_ID, DESCRIPTOR_ID,
    STREAM_CTRL_ID, DESCRIPTOR_NAME_ID, DESCRIPTOR_DESCRIPTION_ID, DESCRIPTOR_SHAPE_ID,
    DESCRIPTOR_FORMAT_ID, DESCRIPTOR_ID_ID, DESCRIPTOR_DTYPE_ID, CTRL_STREAM_START,
    CTRL_DESCRIPTOR_REISSUE, CTRL_STREAM_STOP, CTRL_DESCRIPTOR_UPDATE,
    BUG_COMPAT_DESCRIPTOR_WIDTHS, BUG_COMPAT_SHAPE_BIT_1, BUG_COMPAT_SWAP_ENDIAN,
    BUG_COMPAT_PYSPEAD_0_5_2, library_version)
from ._items import Descriptor, Item, ItemGroup

__version__ = library_version

__all__ = [
    'NULL_ID', 'HEAP_CNT_ID', 'HEAP_LENGTH_ID', 'PAYLOAD_OFFSET_ID', 'PAYLOAD_LENGTH_ID',
    'DESCRIPTOR_ID', 'STREAM_CTRL_ID', 'DESCRIPTOR_NAME_ID', 'DESCRIPTOR_DESCRIPTION_ID',
    'DESCRIPTOR_SHAPE_ID', 'DESCRIPTOR_FORMAT_ID', 'DESCRIPTOR_ID_ID', 'DESCRIPTOR_DTYPE_ID',
    'CTRL_STREAM_START', 'CTRL_DESCRIPTOR_REISSUE', 'CTRL_STREAM_STOP', 'CTRL_DESCRIPTOR_UPDATE',
    'BUG_COMPAT_DESCRIPTOR_WIDTHS', 'BUG_COMPAT_SHAPE_BIT_1', 'BUG_COMPAT_SWAP_ENDIAN',
    'BUG_COMPAT_PYSPEAD_0_5_2', 'MAX_ITEM_POINTER_BITS', 'DEFAULT_HEAP_ADDRESS_BITS',
    'Flavour', 'Descriptor', 'Item', 'ItemGroup', 'ThreadPool', 'InprocQueue', 'plugins',
]

# Constants spead2 exports that have no C counterpart.
MAX_ITEM_POINTER_BITS = 64
DEFAULT_HEAP_ADDRESS_BITS = 40


class Flavour:
    """SPEAD flavour: version 4, 64-bit item pointers, heap_address_bits (a multiple of 8
    in 8..56) and bug_compat flags."""

    def __init__(self, version=4, item_pointer_bits=64, heap_address_bits=40, bug_compat=0):
        if version != 4:
            raise ValueError('version is not supported')
        if item_pointer_bits != 64:
            raise ValueError('item_pointer_bits not supported')
        if not 0 < heap_address_bits < 64:
            raise ValueError('heap_address_bits out of range')
        if heap_address_bits % 8 != 0:
            raise ValueError('heap_address_bits not a multiple of 8')
        if not 0 <= bug_compat <= BUG_COMPAT_PYSPEAD_0_5_2:
            raise ValueError('bug_compat has unknown flags')
        self._version = version
        self._item_pointer_bits = item_pointer_bits
        self._heap_address_bits = heap_address_bits
        self._bug_compat = bug_compat

    version = property(lambda self: self._version)
    item_pointer_bits = property(lambda self: self._item_pointer_bits)
    heap_address_bits = property(lambda self: self._heap_address_bits)
    bug_compat = property(lambda self: self._bug_compat)

    def _key(self):
        return (self._version, self._item_pointer_bits, self._heap_address_bits,
                self._bug_compat)

    def __eq__(self, other):
        if not isinstance(other, Flavour):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return 'Flavour(version={}, item_pointer_bits={}, heap_address_bits={}, ' \
            'bug_compat={})'.format(*self._key())


class ThreadPool:
    """Accepted where spead2 takes a thread pool. Each speadcast stream has its own writer
    thread; affinity (a list of CPUs) pins the writer threads of the streams made with
    this pool, the first CPU to each."""

    def __init__(self, threads=1, affinity=()):
        if threads < 1:
            raise ValueError('threads must be at least 1')
        self.threads = threads
        self.affinity = [int(c) for c in affinity]
        for c in self.affinity:
            if c < 0:
                raise ValueError('affinity CPU {} is negative'.format(c))

    def _writer_cpu(self):
        return self.affinity[0] if self.affinity else -1


_queue_names = itertools.count(1)


class InprocQueue(_speadcast.InprocQueue):
    """An in-process packet queue (spead2.InprocQueue). Without a name it gets a unique one;
    with a name it is the queue of that name (shared within the process)."""

    def __init__(self, name=None):
        if name is None:
            name = 'speadcast-py-{}-{}'.format(os.getpid(), next(_queue_names))
        super().__init__(name)


def plugins(plugin_path=None):
    """Every transport found (built-ins, then each plugin file in search order), as dicts
    with name, path, version, description, result ("loaded", "failed", "shadowed"),
    message, abi, builtin, caps and max_substreams; what speadcast-info lists."""
    return _speadcast.plugins(plugin_path)
