"""The 45 spead2 4.4.1 vectors, encoded through Heap + PacketGenerator and through
BytesStream (send_heap / send_heaps), byte for byte."""

import hashlib
import json

import numpy as np
import pytest

import speadcast
import speadcast.send as send

from conftest import VECTOR_DIR, RawItem


def _cases():
    names = []
    for line in (VECTOR_DIR / 'MANIFEST').read_text().splitlines():
        if line and not line.startswith('#'):
            names.append(line.split('\t')[0])
    return names


def _serial_cases():
    """Cases whose packets come heap after heap (round-robin groups interleave heaps: a
    stream's job, checked by test_bytes_stream)."""
    out = []
    for name in _cases():
        group = json.loads((VECTOR_DIR / (name + '.json')).read_text())['group']
        if group is None or group['mode'] == 'serial':
            out.append(name)
    return out


def _dtype(d):
    if isinstance(d, str):
        return np.dtype(d)
    return np.dtype([(name, _dtype(sub) if isinstance(sub, list) else sub) for name, sub in d])


def _build(case):
    fl = speadcast.Flavour(heap_address_bits=case['flavour']['heap_address_bits'],
                           bug_compat=case['flavour']['bug_compat'])
    heaps = []
    for h in case['heaps']:
        heap = send.Heap(fl)
        heap.repeat_pointers = h['repeat_pointers']
        for e in h['entries']:
            if e['kind'] == 'descriptor':
                shape = tuple(e['shape'])
                if 'dtype' in e:
                    d = speadcast.Descriptor(e['id'], e['name'], e['description'], shape,
                                             _dtype(e['dtype']), e.get('order', 'C'))
                else:
                    d = speadcast.Descriptor(e['id'], e['name'], e['description'], shape,
                                             format=[tuple(f) for f in e['format']])
                heap.add_descriptor(d)
            elif e['kind'] == 'item':
                heap.add_item(RawItem(e['id'], bytes.fromhex(e['raw_hex']),
                                      e['allow_immediate']))
            elif e['kind'] == 'start':
                heap.add_start()
            else:
                assert e['kind'] == 'end'
                heap.add_end()
        heaps.append((heap, h['cnt']))
    return fl, heaps


def _load(name):
    case = json.loads((VECTOR_DIR / (name + '.json')).read_text())
    packets = [bytes.fromhex(line) for line in
               (VECTOR_DIR / (name + '.hex')).read_text().split()]
    return case, packets


def test_corpus_size():
    assert len(_cases()) == 45
    assert len(_serial_cases()) == 43


@pytest.mark.parametrize('name', _serial_cases())
def test_packet_generator(name):
    case, packets = _load(name)
    _, heaps = _build(case)
    mps = case['stream']['max_packet_size']
    got = []
    for heap, cnt in heaps:
        gen = send.PacketGenerator(heap, cnt, mps)
        n = gen.count()
        these = list(gen)
        assert len(these) == n
        got.extend(these)
    assert got == packets


@pytest.mark.parametrize('name', _cases())
def test_bytes_stream(name):
    case, packets = _load(name)
    fl, heaps = _build(case)
    config = send.StreamConfig(max_packet_size=case['stream']['max_packet_size'], flavour=fl,
                               max_heaps=max(4, len(heaps)))
    stream = send.BytesStream(speadcast.ThreadPool(), config)
    if case['group'] is None:
        total = 0
        for heap, cnt in heaps:
            total += stream.send_heap(heap, cnt)
    else:
        mode = {'serial': send.GroupMode.SERIAL,
                'round_robin': send.GroupMode.ROUND_ROBIN}[case['group']['mode']]
        total = stream.send_heaps([send.HeapReference(h, cnt=c) for h, c in heaps], mode)
    value = stream.getvalue()
    assert value == b''.join(packets)
    assert total == case['expected']['bytes'] == len(value)
    assert hashlib.sha256(value).hexdigest() == case['expected']['sha256']
