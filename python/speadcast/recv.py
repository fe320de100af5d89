"""Reading speadcast/SPEAD streams back (for tests and tools): decoded heaps from a
byte string (BytesStream.getvalue()) or from an in-process queue."""

from . import _speadcast
from ._items import Descriptor


class RawItem:
    """One item of a received heap: id, is_immediate, immediate_value (an int for
    immediates) and value (the bytes; for immediates the heap_address_bits/8 bytes)."""

    __slots__ = ('id', 'is_immediate', 'immediate_value', 'value')

    def __init__(self, id, is_immediate, immediate_value, value):
        self.id = id
        self.is_immediate = is_immediate
        self.immediate_value = immediate_value
        self.value = value

    def __repr__(self):
        return 'RawItem(id={:#x}, is_immediate={}, value={!r})'.format(
            self.id, self.is_immediate, self.value)


class Heap:
    """A heap reassembled by the decoder."""

    def __init__(self, t, bug_compat=0):
        self.cnt, self.complete, self.heap_address_bits, items, self.is_start, \
            self.is_end = t
        self.bug_compat = bug_compat
        self._items = [RawItem(*i) for i in items]

    def is_start_of_stream(self):
        return self.is_start

    def is_end_of_stream(self):
        return self.is_end

    def get_items(self):
        return list(self._items)

    def get_descriptors(self):
        return [Descriptor.from_raw(i.value, self.bug_compat)
                for i in self._items if i.id == _speadcast.DESCRIPTOR_ID]


def decode_bytes(data, bug_compat=0):
    """Every heap of a concatenated packet stream, in the order they completed."""
    return [Heap(t, bug_compat) for t in _speadcast.decode(data, bug_compat)]


class InprocReceiver:
    """Heaps sent to an in-process queue (an InprocQueue or a queue name)."""

    def __init__(self, queue, bug_compat=0):
        name = queue if isinstance(queue, str) else queue.name
        self._r = _speadcast.InprocReceiver(name, bug_compat)
        self.bug_compat = bug_compat

    def get(self, timeout=None):
        """The next heap, None at the end of the stream; TimeoutError after timeout s."""
        t = self._r.next(-1 if timeout is None else int(timeout * 1000))
        return None if t is None else Heap(t, self.bug_compat)

    def stop(self):
        self._r.stop()

    def __iter__(self):
        while True:
            heap = self.get(timeout=10)
            if heap is None:
                return
            yield heap
