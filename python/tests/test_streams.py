"""Stream classes: every constructor form, sends, groups, heap lists, cnt sequences,
from_config, plugins, and the errors (types and texts). Network traffic stays on
loopback; every wait is bounded."""

import json
import os
import socket
import threading

import numpy as np
import pytest

import speadcast
import speadcast.recv as recv
import speadcast.send as send

POOL = speadcast.ThreadPool()


def small_heap(value=7, flavour=speadcast.Flavour()):
    ig = send.ItemGroup(flavour=flavour)
    ig.add_item(0x1000, 'x', '', (), format=[('u', 32)], value=value)
    return ig.get_heap(descriptors='none')


def decode_value(heap):
    (item,) = heap.get_items()
    return int.from_bytes(item.value, 'big')


@pytest.fixture
def udp_receiver():
    socks = []

    def make(family=socket.AF_INET, host='127.0.0.1'):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((host, 0))
        s.settimeout(5)
        socks.append(s)
        return s
    yield make
    for s in socks:
        s.close()


def test_stream_config():
    c = send.StreamConfig()
    assert (c.max_packet_size, c.rate, c.burst_size, c.max_heaps, c.burst_rate_ratio,
            c.rate_method) == (1472, 0.0, 65536, 4, 1.05, send.RateMethod.AUTO)
    assert (send.StreamConfig.DEFAULT_MAX_PACKET_SIZE, send.DEFAULT_MAX_HEAPS,
            send.DEFAULT_BURST_SIZE, send.DEFAULT_RATE, send.DEFAULT_BURST_RATE_RATIO) == (
                1472, 4, 65536, 0.0, 1.05)
    c = send.StreamConfig(max_packet_size=9000, rate=1e9, burst_size=10, max_heaps=2,
                          burst_rate_ratio=1.5, rate_method=send.RateMethod.SW)
    assert (c.max_packet_size, c.rate, c.max_heaps, c.rate_method) == (9000, 1e9, 2,
                                                                       send.RateMethod.SW)
    c.rate = 5
    assert c.rate == 5.0
    with pytest.raises(TypeError):
        send.StreamConfig(1472)
    for bad in ({'max_heaps': 0}, {'rate': -1}, {'rate': float('nan')},
                {'burst_rate_ratio': 0.5}, {'max_packet_size': 55},
                {'max_packet_size': 2**25}, {'rate_method': 7}, {'on_full': 'drop'},
                {'flavour': 48}):
        with pytest.raises(ValueError):
            send.StreamConfig(**bad)
    assert [m.name for m in send.RateMethod] == ['SW', 'HW', 'AUTO']
    assert {m.name for m in send.GroupMode} == {'SERIAL', 'ROUND_ROBIN'}


@pytest.mark.parametrize('form', ['endpoints', 'legacy', 'ttl', 'ttl_addr', 'ttl_index',
                                  'socket', 'socket_kw', 'kwargs'])
def test_udp_stream_forms(form, udp_receiver):
    rx = udp_receiver()
    port = rx.getsockname()[1]
    ep = [('127.0.0.1', port)]
    cfg = send.StreamConfig()
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        stream = {
            'endpoints': lambda: send.UdpStream(POOL, ep, cfg, 65536, '127.0.0.1'),
            'legacy': lambda: send.UdpStream(POOL, '127.0.0.1', port, cfg),
            'ttl': lambda: send.UdpStream(POOL, ep, cfg, 65536, 2),
            'ttl_addr': lambda: send.UdpStream(POOL, ep, cfg, 65536, 2, '127.0.0.1'),
            'ttl_index': lambda: send.UdpStream(POOL, ep, cfg, 65536, 2, 1),
            'socket': lambda: send.UdpStream(POOL, tx, ep, cfg),
            'socket_kw': lambda: send.UdpStream(POOL, ep, cfg, 65536, socket=tx),
            'kwargs': lambda: send.UdpStream(thread_pool=POOL, endpoints=ep, config=cfg,
                                             buffer_size=100000, ttl=3),
        }[form]()
    finally:
        tx.close()      # the stream holds its own duplicate
    assert stream.num_substreams == 1
    heap = small_heap(42)
    assert stream.send_heap(heap, cnt=9) == sum(map(len, send.PacketGenerator(heap, 9, 1472)))
    data = rx.recv(65536)
    (heap,) = recv.decode_bytes(data)
    assert heap.cnt == 9 and decode_value(heap) == 42
    stream.close()
    assert stream.closed
    stream.close()
    with pytest.raises(ValueError, match='closed'):
        stream.send_heap(small_heap())


def test_udp_substreams_and_ipv6(udp_receiver):
    a, b = udp_receiver(), udp_receiver()
    stream = send.UdpStream(POOL, [('127.0.0.1', a.getsockname()[1]),
                                   ('127.0.0.1', b.getsockname()[1])])
    assert stream.num_substreams == 2
    stream.send_heap(small_heap(1), substream_index=1)
    stream.send_heap(small_heap(2), substream_index=0)
    assert decode_value(recv.decode_bytes(b.recv(9000))[0]) == 1
    assert decode_value(recv.decode_bytes(a.recv(9000))[0]) == 2
    with pytest.raises(ValueError, match='substream'):
        stream.send_heap(small_heap(), substream_index=2)
    with pytest.raises(ValueError, match='substream'):
        stream.send_heap(small_heap(), substream_index=-1)
    try:
        c = udp_receiver(socket.AF_INET6, '::1')
    except OSError:
        pytest.skip('no IPv6 loopback here')
    s6 = send.UdpStream(POOL, [('::1', c.getsockname()[1])])
    s6.send_heap(small_heap(6))
    assert decode_value(recv.decode_bytes(c.recv(9000))[0]) == 6


def test_udp_errors():
    with pytest.raises(ValueError, match='port'):
        send.UdpStream(POOL, [('127.0.0.1', 70000)])
    with pytest.raises(ValueError) as e:     # the core reports it as a config error
        send.UdpStream(POOL, [('no-such-host.invalid', 9)])
    assert 'no-such-host.invalid' in str(e.value)
    with pytest.raises(TypeError):
        send.UdpStream(POOL)
    with pytest.raises(TypeError, match='unexpected'):
        send.UdpStream(POOL, [('127.0.0.1', 9)], None, 1000, 1, 1, 'extra')


def _tcp_server():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(('127.0.0.1', 0))
    srv.listen(1)
    srv.settimeout(10)
    return srv


def _read_all(conn):
    chunks = []
    conn.settimeout(10)
    while True:
        c = conn.recv(65536)
        if not c:
            return b''.join(chunks)
        chunks.append(c)


@pytest.mark.parametrize('form', ['endpoints', 'legacy', 'socket'])
def test_tcp_stream(form):
    srv = _tcp_server()
    port = srv.getsockname()[1]
    got = {}

    def serve():
        conn, _ = srv.accept()
        got['data'] = _read_all(conn)
        conn.close()
    t = threading.Thread(target=serve)
    t.start()
    cfg = send.StreamConfig(max_packet_size=9000)
    if form == 'endpoints':
        stream = send.TcpStream(POOL, [('127.0.0.1', port)], cfg, 0, '127.0.0.1')
    elif form == 'legacy':
        stream = send.TcpStream(POOL, '127.0.0.1', port, cfg)
    else:
        sock = socket.create_connection(('127.0.0.1', port))
        stream = send.TcpStream(POOL, sock, cfg)
        sock.close()
    big = np.arange(100000, dtype='<u4')
    ig = send.ItemGroup()
    ig.add_item(None, 'big', '', big.shape, dtype=big.dtype, value=big)
    assert stream.num_substreams == 1
    stream.send_heap(ig.get_heap())
    stream.close()
    t.join(10)
    srv.close()
    (heap,) = recv.decode_bytes(got['data'])
    g = speadcast.ItemGroup()
    g.update(heap)
    np.testing.assert_array_equal(g['big'].value, big)


def test_tcp_errors():
    srv = _tcp_server()
    port = srv.getsockname()[1]
    srv.close()
    with pytest.raises(ConnectionRefusedError) as e:
        send.TcpStream(POOL, [('127.0.0.1', port)])
    assert e.value.errno == 111 and '127.0.0.1' in str(e.value)
    with pytest.raises(ValueError):
        send.TcpStream(POOL, [('127.0.0.1', 1), ('127.0.0.1', 2)])


def test_send_heaps_lists_and_cnts():
    stream = send.BytesStream(POOL, send.StreamConfig(max_heaps=8))
    heaps = [small_heap(i) for i in range(4)]
    refs = [send.HeapReference(h, cnt=10 + i) for i, h in enumerate(heaps)]
    assert refs[1].heap is heaps[1] and refs[1].cnt == 11
    assert refs[0].substream_index == 0 and refs[0].rate == -1.0
    n = stream.send_heaps(refs, send.GroupMode.SERIAL)
    assert n == sum(len(p) for r in refs for p in send.PacketGenerator(r.heap, r.cnt, 1472))
    hl = send.HeapReferenceList([send.HeapReference(h) for h in heaps])
    assert len(hl) == 4 and len(hl[1:3]) == 2 and hl[-1].heap is heaps[3]
    with pytest.raises(IndexError):
        hl[4]
    with pytest.raises(ValueError):
        hl[::2]
    stream.set_cnt_sequence(100, 5)
    stream.send_heaps(hl, send.GroupMode.ROUND_ROBIN)
    stream.send_heaps(hl[1:3], send.GroupMode.SERIAL)        # reused, sliced
    stream.send_heap(heaps[0])
    got = recv.decode_bytes(stream.getvalue())
    assert [h.cnt for h in got] == [10, 11, 12, 13, 100, 105, 110, 115, 120, 125, 130]
    assert [decode_value(h) for h in got] == [0, 1, 2, 3, 0, 1, 2, 3, 1, 2, 0]
    for empty in ([], hl[2:2]):
        with pytest.raises(OSError) as e:
            stream.send_heaps(empty, send.GroupMode.SERIAL)
        assert e.value.errno == 22
    with pytest.raises(TypeError):
        stream.send_heaps([heaps[0]], send.GroupMode.SERIAL)
    with pytest.raises(TypeError):
        send.HeapReferenceList([1])
    with pytest.raises(ValueError, match='step'):
        stream.set_cnt_sequence(1, 0)
    with pytest.raises(ValueError, match='GroupMode'):
        stream.send_heaps(refs, 7)
    # too many heaps for max_heaps: all or nothing, the queue-full error
    with pytest.raises(OSError) as e:
        stream.send_heaps([send.HeapReference(small_heap()) for _ in range(9)],
                          send.GroupMode.SERIAL)
    assert e.value.errno == 105
    stream.reset()
    assert stream.getvalue() == b''


def test_send_errors():
    stream = send.BytesStream(POOL)
    with pytest.raises(OSError) as e:
        stream.send_heap(small_heap(), cnt=2**40)
    assert e.value.errno == 22 and 'cnt' in str(e.value)
    with pytest.raises(ValueError, match='flavour'):
        stream.send_heap(small_heap(flavour=speadcast.Flavour(heap_address_bits=48)))
    with pytest.raises(ValueError):
        stream.send_heap(small_heap(), rate=float('nan'))
    with pytest.raises(TypeError):
        stream.send_heap('not a heap')
    with pytest.raises(TypeError, match='unexpected keyword'):
        stream.send_heap(small_heap(), count=3)
    with pytest.raises(TypeError, match='given twice'):
        stream.send_heap(small_heap(), 5, cnt=3)
    with pytest.raises(TypeError, match='at most 4'):
        stream.send_heap(small_heap(), 1, 0, 0.0, 9)
    with pytest.raises(TypeError):
        stream.send_heap()
    with pytest.raises(OSError):
        stream.send_heap(small_heap(), cnt=2**70)
    assert stream.send_heap(heap=small_heap(), cnt=5, substream_index=0, rate=0.0) > 0
    assert stream.send_heap(small_heap(), 6, 0, 1e9) > 0
    assert [h.cnt for h in recv.decode_bytes(stream.getvalue())] == [5, 6]
    # A heap too big for the flavour's addresses
    tiny = speadcast.Flavour(heap_address_bits=8)
    ig = send.ItemGroup(flavour=tiny)
    ig.add_item(0x10, 'x', '', (300,), dtype='u1', value=np.zeros(300, 'u1'))
    s8 = send.BytesStream(POOL, send.StreamConfig(flavour=tiny))
    with pytest.raises(ValueError, match='heap'):
        s8.send_heap(ig.get_heap(descriptors='none'))
    # 48-bit flavour stream
    s48 = send.BytesStream(POOL, send.StreamConfig(
        flavour=speadcast.Flavour(heap_address_bits=48)))
    s48.send_heap(small_heap(flavour=speadcast.Flavour(heap_address_bits=48)), cnt=2**47)
    assert recv.decode_bytes(s48.getvalue())[0].cnt == 2**47
    assert s48.stream_config['flavour'] == (48, 0)


def test_from_config(tmp_path, udp_receiver):
    rx = udp_receiver()
    doc = {'transport': 'udp', 'stream': {'max_packet_size': 9000},
           'options': {'endpoints': ['127.0.0.1:{}'.format(rx.getsockname()[1])]}}
    for config in (doc, json.dumps(doc)):
        s = send.Stream.from_config(config)
        s.send_heap(small_heap(3))
        assert decode_value(recv.decode_bytes(rx.recv(9000))[0]) == 3
        assert s.stream_config['max_packet_size'] == 9000
    path = tmp_path / 'stream.json'
    pcap = tmp_path / 'out.pcap'
    path.write_text(json.dumps({'transport': 'pcap', 'options': {'path': str(pcap),
                                                     'endpoints': ['127.0.0.1:7000']}}))
    for p in (path, str(path)):
        s = send.Stream.from_config(p)
        s.send_heap(small_heap(4))
        s.close()
    assert pcap.stat().st_size > 64
    with pytest.raises(ValueError, match=r'options\.endpoints\[0\]'):
        send.Stream.from_config({'transport': 'udp', 'options': {'endpoints': ['x:0']}})
    with pytest.raises(ValueError, match='max_heapz.*did you mean'):
        send.Stream.from_config({'transport': 'bytes', 'stream': {'max_heapz': 2}})
    with pytest.raises(OSError) as e:
        send.Stream.from_config({'transport': 'nosuch'})
    assert 'nosuch' in str(e.value) and 'udp' in str(e.value)
    with pytest.raises(OSError):
        send.Stream.from_config(str(tmp_path / 'missing.json'))
    with pytest.raises(TypeError):
        send.Stream()


def test_plugins():
    found = {p['name']: p for p in speadcast.plugins()}
    for name in ('bytes', 'udp', 'tcp', 'inproc', 'pcap', 'ibverbs'):
        assert found[name]['result'] == 'loaded', found[name]
    assert found['bytes']['builtin'] and found['bytes']['path'] is None
    assert found['udp']['path'].endswith('speadcast-udp.so')
    assert found['udp']['version'] and found['udp']['abi'][0] == 1
    assert speadcast.plugins(['/nonexistent'])[0]['name'] == 'bytes'


def test_udp_ibv_no_device():
    cfg = send.UdpIbvConfig(endpoints=[('239.10.11.12', 7000)], interface_address='127.0.0.1',
                            buffer_size=1 << 20, ttl=2, comp_vector=-1, max_poll=5,
                            memory_regions=[np.zeros(4096, np.uint8)])
    assert (cfg.ttl, cfg.comp_vector, cfg.max_poll, cfg.buffer_size) == (2, -1, 5, 1 << 20)
    with pytest.raises(OSError) as e:
        send.UdpIbvStream(POOL, send.StreamConfig(), cfg)
    assert 'no RDMA device' in str(e.value) and '127.0.0.1' in str(e.value)
    with pytest.raises(TypeError):
        send.UdpIbvStream(POOL, send.StreamConfig())


def test_thread_pool():
    p = speadcast.ThreadPool(2, [0])
    assert p.threads == 2 and p.affinity == [0]
    s = send.BytesStream(p)
    s.send_heap(small_heap())
    with pytest.raises(ValueError):
        speadcast.ThreadPool(0)
    with pytest.raises(ValueError):
        speadcast.ThreadPool(1, [-1])
    with pytest.raises(ValueError):
        send.BytesStream(speadcast.ThreadPool(1, [100000]))


def test_heap_reference_fields_and_list_copies():
    h = small_heap(1)
    ref = send.HeapReference(h, cnt=5, substream_index=0, rate=0.0)
    hl = send.HeapReferenceList([ref])
    ref.cnt = 9            # writable, as in spead2; the list keeps its own copy
    ref.substream_index = 0
    ref.rate = -1.0
    assert (ref.cnt, ref.substream_index, ref.rate) == (9, 0, -1.0)
    got = hl[0]
    assert got.cnt == 5 and got.heap is h and got is not ref
    got.cnt = 77           # a copy again: the list does not change
    stream = send.BytesStream(POOL)
    stream.send_heaps(hl, send.GroupMode.SERIAL)
    stream.send_heaps([ref], send.GroupMode.SERIAL)
    assert [x.cnt for x in recv.decode_bytes(stream.getvalue())] == [5, 9]
    with pytest.raises(AttributeError):
        ref.heap = small_heap()
    with pytest.raises(ValueError):
        send.HeapReference(h, substream_index=-1)
    with pytest.raises(TypeError):
        send.HeapReference(h, 5)          # cnt is keyword-only


FAKE_DIR = os.environ.get('SPC_FAKE_PLUGIN_DIR')


@pytest.mark.skipif(not FAKE_DIR or not os.path.isdir(FAKE_DIR),
                    reason='the test plugins of the CMake build (SPC_FAKE_PLUGIN_DIR)')
def test_third_party_plugins():
    # "fakeasync" is not installed with speadcast: reached by plugin_path, like any
    # third-party transport. fail_every=2 makes every second packet fail with EIO.
    doc = {'transport': 'fakeasync', 'plugin_path': [FAKE_DIR],
           'options': {'fail_every': 0}}
    stream = send.Stream.from_config(doc)
    assert stream.send_heap(small_heap()) > 0
    doc['options']['fail_every'] = 2
    stream = send.Stream.from_config(json.dumps(doc))
    stream.send_heap(small_heap())
    with pytest.raises(OSError) as e:
        stream.send_heap(small_heap())
    assert e.value.errno == 5
    found = {p['name']: p for p in speadcast.plugins([FAKE_DIR])}
    assert found['fakeasync']['result'] == 'loaded'
    assert found['abi2']['result'] == 'failed' and found['abi2']['message']
    with pytest.raises(OSError) as e:
        send.Stream.from_config({'transport': 'abi2', 'plugin_path': [FAKE_DIR]})
    assert 'speadcast-abi2.so' in str(e.value)
    with pytest.raises(OSError, match='open'):
        send.Stream.from_config({'transport': 'openfail', 'plugin_path': [FAKE_DIR]})


@pytest.mark.skipif(not FAKE_DIR or not os.path.isdir(FAKE_DIR),
                    reason='the test plugins of the CMake build (SPC_FAKE_PLUGIN_DIR)')
@pytest.mark.asyncio
async def test_third_party_plugin_asyncio():
    import speadcast.send.asyncio as saio
    stream = saio.from_config({'transport': 'fakeasync', 'plugin_path': [FAKE_DIR],
                               'options': {'fail_every': 2}})
    ok = await stream.async_send_heap(small_heap())
    assert ok > 0
    with pytest.raises(OSError) as e:
        await stream.async_send_heap(small_heap())
    assert e.value.errno == 5


def test_heap_list_follows_heaps_that_changed():
    ig = send.ItemGroup()
    ig.add_item(0x1000, 'x', '', (), format=[('u', 32)], value=1)
    heap = ig.get_heap(descriptors='none')
    hl = send.HeapReferenceList([send.HeapReference(heap)])
    stream = send.BytesStream(POOL)
    stream.send_heaps(hl, send.GroupMode.SERIAL)
    heap.add_end()                   # the heap gained an item after the list was used
    stream.send_heaps(hl, send.GroupMode.SERIAL)
    stream.send_heaps(hl[0:1], send.GroupMode.SERIAL)
    first, second, third = recv.decode_bytes(stream.getvalue())
    assert not first.is_end_of_stream() and second.is_end_of_stream()
    assert third.is_end_of_stream()


def test_objects_refuse_a_second_init():
    heap = small_heap()
    ref = send.HeapReference(heap)
    with pytest.raises(RuntimeError, match='already'):
        ref.__init__(small_heap())
    assert ref.heap is heap
    hl = send.HeapReferenceList([ref])
    with pytest.raises(RuntimeError, match='already'):
        hl.__init__([])
    with pytest.raises(RuntimeError, match='already'):
        heap.__init__(speadcast.Flavour())
    stream = send.BytesStream(POOL)
    with pytest.raises(RuntimeError, match='already'):
        speadcast._speadcast.Stream.__init__(stream, '{"transport": "bytes"}')
    gen = send.PacketGenerator(heap, 1, 1472)
    with pytest.raises(RuntimeError, match='already'):
        gen.__init__(heap, 1, 1472)
