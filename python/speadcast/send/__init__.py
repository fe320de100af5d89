"""speadcast.send: spead2.send's API. Streams are speadcast streams opened from a JSON
config the classes build (Stream.from_config takes one directly, for any transport
plugin); heaps are built in C and referenced, never copied per packet."""

import enum
import json
import math
import os

from .. import _speadcast, Flavour
from .._items import ItemGroup as _BaseItemGroup

PacketGenerator = _speadcast.PacketGenerator
HeapReference = _speadcast.HeapReference
HeapReferenceList = _speadcast.HeapReferenceList


class RateMethod(enum.IntEnum):
    SW = 0
    HW = 1
    AUTO = 2


class GroupMode(enum.IntEnum):
    SERIAL = 0
    ROUND_ROBIN = 1


DEFAULT_MAX_PACKET_SIZE = 1472
DEFAULT_RATE = 0.0
DEFAULT_BURST_SIZE = 65536
DEFAULT_MAX_HEAPS = 4
DEFAULT_BURST_RATE_RATIO = 1.05
DEFAULT_RATE_METHOD = RateMethod.AUTO
DEFAULT_BUFFER_SIZE = 524288
MIN_PACKET_SIZE = _speadcast.MIN_PACKET_SIZE
MAX_PACKET_SIZE = _speadcast.MAX_PACKET_SIZE


class StreamConfig:
    """Stream configuration (keyword-only). Beyond spead2: flavour (the flavour of the
    heaps the stream sends; None, the default, means the flavour of the first heap sent,
    SPEAD-64-40 until then) and on_full ("block": a send waits for room; "fail": it fails
    at once with the queue-full OSError; default "block" for blocking streams, "fail" for
    asyncio streams, as spead2 behaves there)."""

    DEFAULT_MAX_PACKET_SIZE = DEFAULT_MAX_PACKET_SIZE
    DEFAULT_RATE = DEFAULT_RATE
    DEFAULT_BURST_SIZE = DEFAULT_BURST_SIZE
    DEFAULT_MAX_HEAPS = DEFAULT_MAX_HEAPS
    DEFAULT_BURST_RATE_RATIO = DEFAULT_BURST_RATE_RATIO
    DEFAULT_RATE_METHOD = DEFAULT_RATE_METHOD

    def __init__(self, *, max_packet_size=DEFAULT_MAX_PACKET_SIZE, rate=DEFAULT_RATE,
                 burst_size=DEFAULT_BURST_SIZE, max_heaps=DEFAULT_MAX_HEAPS,
                 burst_rate_ratio=DEFAULT_BURST_RATE_RATIO, rate_method=DEFAULT_RATE_METHOD,
                 flavour=None, on_full=None):
        self.max_packet_size = max_packet_size
        self.rate = rate
        self.burst_size = burst_size
        self.max_heaps = max_heaps
        self.burst_rate_ratio = burst_rate_ratio
        self.rate_method = rate_method
        self.flavour = flavour
        self.on_full = on_full

    # Each attribute is checked when set, so a bad value raises ValueError at once.
    def __setattr__(self, name, value):
        check = _CONFIG_CHECKS.get(name)
        if check is not None:
            value = check(value)
        object.__setattr__(self, name, value)

    def _to_json(self, default_on_full, flavour=None):
        flavour = flavour or self.flavour or Flavour()
        return {
            'max_packet_size': self.max_packet_size, 'rate': self.rate,
            'burst_size': self.burst_size, 'max_heaps': self.max_heaps,
            'burst_rate_ratio': self.burst_rate_ratio,
            'rate_method': self.rate_method.name.lower(),
            'on_full': self.on_full or default_on_full,
            'flavour': {'heap_address_bits': flavour.heap_address_bits,
                        'bug_compat': flavour.bug_compat}}

    def __repr__(self):
        return ('StreamConfig(max_packet_size={}, rate={}, burst_size={}, max_heaps={}, '
                'burst_rate_ratio={}, rate_method={})').format(
                    self.max_packet_size, self.rate, self.burst_size, self.max_heaps,
                    self.burst_rate_ratio, self.rate_method)


def _int_at_least(name, low, high=None):
    def check(v):
        v = int(v)
        if v < low:
            raise ValueError('{} {} is below {}'.format(name, v, low))
        if high is not None and v > high:
            raise ValueError('{} {} is above {}'.format(name, v, high))
        return v
    return check


def _float_at_least(name, low):
    def check(v):
        v = float(v)
        if not math.isfinite(v) or v < low:
            raise ValueError('{} {} must be finite and at least {}'.format(name, v, low))
        return v
    return check


def _check_on_full(v):
    if v not in (None, 'block', 'fail'):
        raise ValueError('on_full must be "block" or "fail", not {!r}'.format(v))
    return v


def _check_flavour(v):
    if v is not None and not isinstance(v, Flavour):
        raise ValueError('flavour must be a speadcast.Flavour or None')
    return v


_CONFIG_CHECKS = {
    'max_packet_size': _int_at_least('max_packet_size', MIN_PACKET_SIZE, MAX_PACKET_SIZE),
    'rate': _float_at_least('rate', 0.0),
    'burst_size': _int_at_least('burst_size', 0),
    'max_heaps': _int_at_least('max_heaps', 1),
    'burst_rate_ratio': _float_at_least('burst_rate_ratio', 1.0),
    'rate_method': RateMethod,
    'flavour': _check_flavour,
    'on_full': _check_on_full,
}


class Heap(_speadcast.Heap):
    """Heap(flavour=Flavour()): items and descriptors to send; item values are referenced
    (the heap keeps them alive) and must not be resized while the heap exists."""

    def __init__(self, flavour=Flavour()):
        super().__init__(flavour)


class HeapGenerator:
    """Builds heaps from an item group: descriptors and values that are stale (never sent,
    replaced, changed or, with descriptor_frequency N, sent N heaps ago)."""

    _SELECT = ('stale', 'all', 'none')

    def __init__(self, item_group, descriptor_frequency=None, flavour=Flavour()):
        if descriptor_frequency is not None and descriptor_frequency <= 0:
            raise ValueError('descriptor_frequency must be positive or None')
        self._item_group = item_group
        self._descriptor_frequency = descriptor_frequency
        self._flavour = flavour
        self._heaps = 0                # add_to_heap calls so far
        self._descriptor_sent = {}     # id -> (item, heap index it was last sent in)
        self._value_sent = {}          # id -> (item, version last sent)

    def _descriptor_stale(self, item, how):
        if how != 'stale':
            return how == 'all'
        sent = self._descriptor_sent.get(item.id)
        if sent is None or sent[0] is not item:
            return True
        return (self._descriptor_frequency is not None
                and self._heaps - sent[1] >= self._descriptor_frequency)

    def _value_stale(self, item, how):
        if item.value is None or how == 'none':
            return False
        sent = self._value_sent.get(item.id)
        return how == 'all' or sent is None or sent[0] is not item or sent[1] != item.version

    def add_to_heap(self, heap, descriptors='stale', data='stale'):
        if descriptors not in self._SELECT:
            raise ValueError("descriptors must be one of 'stale', 'all', 'none'")
        if data not in self._SELECT:
            raise ValueError("data must be one of 'stale', 'all', 'none'")
        for item in self._item_group.values():
            if self._descriptor_stale(item, descriptors):
                heap.add_descriptor(item)
                self._descriptor_sent[item.id] = (item, self._heaps)
            if self._value_stale(item, data):
                heap.add_item(item)
                self._value_sent[item.id] = (item, item.version)
        self._heaps += 1
        return heap

    def get_heap(self, descriptors='stale', data='stale'):
        return self.add_to_heap(Heap(self._flavour), descriptors, data)

    def get_start(self):
        heap = Heap(self._flavour)
        heap.add_start()
        return heap

    def get_end(self):
        heap = Heap(self._flavour)
        heap.add_end()
        return heap


class ItemGroup(_BaseItemGroup, HeapGenerator):
    """An item group with its own heap generator."""

    def __init__(self, descriptor_frequency=None, flavour=Flavour()):
        _BaseItemGroup.__init__(self)
        HeapGenerator.__init__(self, self, descriptor_frequency, flavour)


# ------------------------------------------------------------------ streams

def _endpoint(ep):
    host, port = ep
    return {'host': str(host), 'port': int(port)}


def _is_socket(obj):
    return hasattr(obj, 'fileno') and not isinstance(obj, (str, bytes, list, tuple))


class Stream(_speadcast.Stream):
    """Base of every stream. Stream.from_config(config) opens a stream on any transport
    (third-party plugins included) from a JSON text, a dict or a config file path, with
    the same methods as the other streams."""

    _completion_queue = False
    _default_on_full = 'block'

    def __init__(self, *args, **kwargs):
        raise TypeError('use a transport class or {}.from_config(config)'.format(
            type(self).__name__))

    def _open(self, transport, options, config, thread_pool, keep=None):
        if config is None:
            config = StreamConfig()
        doc = {'transport': transport, 'stream': config._to_json(self._default_on_full),
               'options': options}
        self._open_doc(json.dumps(doc), None, thread_pool, keep)
        if config.flavour is None:
            # As in spead2, heaps of any flavour may be sent: the first heap's flavour
            # becomes the stream's (reopening it in that flavour before anything is sent).
            self._doc = doc
            self._config = config
            self._adaptive = True

    def _adopt_flavour(self, flavour):
        self._doc['stream'] = self._config._to_json(self._default_on_full, flavour)
        self._reopen(json.dumps(self._doc))

    def _open_doc(self, text, path, thread_pool, keep=None):
        cpu = thread_pool._writer_cpu() if thread_pool is not None else -1
        _speadcast.Stream.__init__(self, text, path=path,
                                   completion_queue=self._completion_queue, cpu=cpu, keep=keep)

    @classmethod
    def from_config(cls, config, thread_pool=None):
        """A stream from a config: a dict, a JSON text or the path of a JSON file."""
        self = cls.__new__(cls)
        if isinstance(config, dict):
            self._open_doc(json.dumps(config), None, thread_pool)
        elif isinstance(config, os.PathLike) or not str(config).lstrip().startswith('{'):
            self._open_doc(None, os.fspath(config), thread_pool)
        else:
            self._open_doc(str(config), None, thread_pool)
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _split_pool(args, kwargs):
    """spead2 takes a thread pool first; it may also be left out or passed by keyword."""
    from .. import ThreadPool
    if args and (args[0] is None or isinstance(args[0], ThreadPool)):
        return args[0], list(args[1:])
    return kwargs.pop('thread_pool', None), list(args)


def _take(args, kwargs, name, default):
    if args:
        if name in kwargs:
            raise TypeError('{} given twice'.format(name))
        return args.pop(0)
    return kwargs.pop(name, default)


def _no_more(args, kwargs, cls):
    if args or kwargs:
        raise TypeError('{}: unexpected arguments {} {}'.format(
            cls, tuple(args), sorted(kwargs)))


class UdpStream(Stream):
    """UDP, one endpoint per substream. Forms (thread_pool first, as spead2):
    (endpoints, config, buffer_size, interface_address=''),
    (endpoints, config, buffer_size, ttl[, interface_address | interface_index]),
    (socket, endpoints, config), (endpoints, config, buffer_size, socket=sock),
    and (hostname, port, ...) in place of endpoints."""

    DEFAULT_BUFFER_SIZE = DEFAULT_BUFFER_SIZE

    def __init__(self, *args, **kwargs):
        pool, args = _split_pool(args, kwargs)
        opts = {}
        sock = None
        if args and _is_socket(args[0]):
            sock = args.pop(0)
        if args and isinstance(args[0], str):
            endpoints = [(args.pop(0), args.pop(0))]
        else:
            endpoints = _take(args, kwargs, 'endpoints', None)
        if endpoints is None:
            raise TypeError('UdpStream needs endpoints')
        config = _take(args, kwargs, 'config', None)
        if sock is None:
            opts['buffer_size'] = int(_take(args, kwargs, 'buffer_size', DEFAULT_BUFFER_SIZE))
            if args and not isinstance(args[0], str):
                kwargs['ttl'] = args.pop(0)
            if args:
                last = args.pop(0)
                kwargs['interface_address' if isinstance(last, str) else 'interface_index'] = last
            sock = kwargs.pop('socket', None)
        if 'ttl' in kwargs:
            opts['ttl'] = int(kwargs.pop('ttl'))
        addr = kwargs.pop('interface_address', '')
        if addr:
            opts['interface_address'] = addr
        if 'interface_index' in kwargs:
            opts['interface_index'] = int(kwargs.pop('interface_index'))
        _no_more(args, kwargs, 'UdpStream')
        keep = None
        if sock is not None:
            # Our own duplicate: the caller may close theirs at once, and a reopen
            # (flavour adoption) needs the socket again.
            keep = sock.dup()
            opts['socket_fd'] = keep.fileno()
        opts['endpoints'] = [_endpoint(e) for e in endpoints]
        self._open('udp', opts, config, pool, keep=keep)


class TcpStream(Stream):
    """TCP to one endpoint: (endpoints, config, buffer_size, interface_address) connects
    (waiting, with the GIL released); (socket, config) uses a connected socket. The
    default buffer_size 0 leaves the kernel's autotuned send buffer. A stream that
    connected itself does not adopt the first heap's flavour (that would reconnect):
    give StreamConfig(flavour=...) for heaps other than SPEAD-64-40."""

    DEFAULT_BUFFER_SIZE = 0

    def __init__(self, *args, **kwargs):
        pool, args = _split_pool(args, kwargs)
        opts = {}
        keep = None
        if args and _is_socket(args[0]):
            keep = args.pop(0).dup()       # ours: see UdpStream
            opts['socket_fd'] = keep.fileno()
            config = _take(args, kwargs, 'config', None)
        else:
            if args and isinstance(args[0], str):
                endpoints = [(args.pop(0), args.pop(0))]
            else:
                endpoints = _take(args, kwargs, 'endpoints', None)
            if endpoints is None:
                raise TypeError('TcpStream needs endpoints or a socket')
            opts['endpoints'] = [_endpoint(e) for e in endpoints]
            config = _take(args, kwargs, 'config', None)
            opts['buffer_size'] = int(_take(args, kwargs, 'buffer_size', self.DEFAULT_BUFFER_SIZE))
            addr = _take(args, kwargs, 'interface_address', '')
            if addr:
                opts['interface_address'] = addr
        _no_more(args, kwargs, 'TcpStream')
        self._open('tcp', opts, config, pool, keep=keep)
        if keep is None:
            self._adaptive = False


class BytesStream(Stream):
    """Collects the packets in memory; getvalue() returns them concatenated."""

    def __init__(self, *args, **kwargs):
        pool, args = _split_pool(args, kwargs)
        config = _take(args, kwargs, 'config', None)
        _no_more(args, kwargs, 'BytesStream')
        self._open('bytes', {}, config, pool)


class InprocStream(Stream):
    """Sends substream i to queues[i] (speadcast.InprocQueue objects)."""

    def __init__(self, *args, **kwargs):
        pool, args = _split_pool(args, kwargs)
        queues = list(_take(args, kwargs, 'queues', None) or [])
        config = _take(args, kwargs, 'config', None)
        _no_more(args, kwargs, 'InprocStream')
        if not queues:
            raise ValueError('InprocStream needs at least one queue')
        self._queues = tuple(queues)
        self._open('inproc', {'queues': [q.name for q in queues]}, config, pool,
                   keep=self._queues)

    @property
    def queues(self):
        return self._queues

    @property
    def queue(self):
        return self._queues[0]


class UdpIbvConfig:
    """Options of the ibverbs transport (spead2.send.UdpIbvConfig)."""

    DEFAULT_BUFFER_SIZE = 512 * 1024
    DEFAULT_MAX_POLL = 10

    def __init__(self, *, endpoints=(), interface_address='', buffer_size=DEFAULT_BUFFER_SIZE,
                 ttl=1, comp_vector=0, max_poll=DEFAULT_MAX_POLL, memory_regions=()):
        self.endpoints = list(endpoints)
        self.interface_address = interface_address
        self.buffer_size = buffer_size
        self.ttl = ttl
        self.comp_vector = comp_vector
        self.max_poll = max_poll
        self.memory_regions = list(memory_regions)

    def _options(self):
        opts = {'endpoints': [_endpoint(e) for e in self.endpoints],
                'buffer_size': int(self.buffer_size), 'ttl': int(self.ttl),
                'comp_vector': int(self.comp_vector), 'max_poll': int(self.max_poll)}
        if self.interface_address:
            opts['interface_address'] = self.interface_address
        return opts


class UdpIbvStream(Stream):
    """UDP through an RDMA NIC (ibverbs plugin): (config, udp_ibv_config). Where no RDMA
    device owns interface_address, construction raises OSError saying so."""

    def __init__(self, *args, **kwargs):
        pool, args = _split_pool(args, kwargs)
        config = _take(args, kwargs, 'config', None)
        ibv = _take(args, kwargs, 'udp_ibv_config', None)
        _no_more(args, kwargs, 'UdpIbvStream')
        if ibv is None:
            raise TypeError('UdpIbvStream needs a UdpIbvConfig')
        self._open('ibverbs', ibv._options(), config, pool, keep=tuple(ibv.memory_regions))
        for region in ibv.memory_regions:
            self.register_memory(region)


__all__ = ['RateMethod', 'GroupMode', 'StreamConfig', 'Heap', 'PacketGenerator',
           'HeapReference', 'HeapReferenceList', 'HeapGenerator', 'ItemGroup', 'Stream',
           'UdpStream', 'TcpStream', 'BytesStream', 'InprocStream', 'UdpIbvConfig',
           'UdpIbvStream']
