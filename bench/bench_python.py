#!/usr/bin/python3
"""Benchmark of the Python package speadcast, UDP into a bound loopback socket nobody
reads (the kernel drops what overflows it). Prints:

  1. sync send_heap: heaps/s, one 1 KiB item + a 48-bit timestamp per heap
  2. send_heaps of 64 such heaps: heaps/s
  3. asyncio async_send_heap with 32 in flight: heaps/s
  4. 4 MiB heaps at 8972-byte packets: Gb/s, beside speadcast-send for the same heaps
     in the same run

Run from the build tree:  PYTHONPATH=build/python /usr/bin/python3 bench/bench_python.py
(--seconds S per figure, default 2; --speadcast-send PATH, default build/tools/...).
spead2 4.4.1's Python module on this machine type, and the targets, are printed beside.
"""

import argparse
import asyncio
import collections
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time

import numpy as np

import speadcast
import speadcast.send as send
import speadcast.send.asyncio as saio

SPEAD2 = {'sync': '~10 k heaps/s', 'batch': '~400-490 k heaps/s',
          'asyncio': '~180-240 k heaps/s', 'large': '~29-35 Gb/s'}
TARGET = {'sync': '>= 2x spead2 (>= 20 k)', 'batch': '>= 1.2x (>= 480-590 k)',
          'asyncio': '>= 1.2x (>= 216-288 k)', 'large': 'within 5 % of speadcast-send'}


def sink():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('127.0.0.1', 0))
    return s


def small_group():
    ig = send.ItemGroup(flavour=speadcast.Flavour(heap_address_bits=48))
    ig.add_item(0x1600, 'timestamp', '', (), format=[('u', 48)], value=0)
    ig.add_item(0x1601, 'data', '', (1024,), dtype='u1', value=np.zeros(1024, 'u1'))
    return ig


def config(**kw):
    return send.StreamConfig(flavour=speadcast.Flavour(heap_address_bits=48), **kw)


def cpu_seconds(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def timed(fn, seconds):
    """Runs fn(n) with growing n until it takes `seconds`; returns (units per second,
    CPU microseconds per unit of this process: caller and writer threads together)."""
    n = 256
    while True:
        c0 = cpu_seconds(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        done = fn(n)
        dt = time.perf_counter() - t0
        if dt >= seconds or n >= 1 << 26:
            return done / dt, (cpu_seconds(resource.RUSAGE_SELF) - c0) / done * 1e6
        n = int(n * max(2.0, min(10.0, seconds / max(dt, 1e-3) * 1.1)))


def bench_sync(rx, seconds):
    stream = send.UdpStream(None, [rx.getsockname()], config(max_heaps=8))
    heap = small_group().get_heap()

    def run(n):
        for _ in range(n):
            stream.send_heap(heap)
        return n
    run(1000)
    return timed(run, seconds)


def bench_batch(rx, seconds):
    stream = send.UdpStream(None, [rx.getsockname()], config(max_heaps=128))
    ig = small_group()
    heaps = [ig.get_heap(descriptors='all', data='all') for _ in range(64)]
    refs = send.HeapReferenceList([send.HeapReference(h) for h in heaps])

    def run(n):
        for _ in range(max(1, n // 64)):
            stream.send_heaps(refs, send.GroupMode.SERIAL)
        return max(1, n // 64) * 64
    run(6400)
    return timed(run, seconds)


def bench_asyncio(rx, seconds):
    async def main():
        stream = saio.UdpStream(None, [rx.getsockname()], config(max_heaps=64))
        heap = small_group().get_heap()

        async def run(n):
            window = collections.deque()
            for _ in range(n):
                window.append(stream.async_send_heap(heap))
                if len(window) == 32:
                    await window.popleft()
            await asyncio.gather(*window)
            return n
        await run(1000)
        n = 4096
        while True:
            c0 = cpu_seconds(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            await run(n)
            dt = time.perf_counter() - t0
            if dt >= seconds:
                return n / dt, (cpu_seconds(resource.RUSAGE_SELF) - c0) / n * 1e6
            n = int(n * max(2.0, min(10.0, seconds / max(dt, 1e-3) * 1.1)))
    return asyncio.run(main())


def bench_large(rx, seconds, heaps):
    """4 MiB heaps, 4 in flight, each slot with its own buffer: as speadcast-send does
    (without --verify its buffers are calloc'ed and never written, and so are these:
    np.zeros of this size is fresh zero pages)."""
    async def main():
        fl = speadcast.Flavour(heap_address_bits=48)
        stream = saio.UdpStream(None, [rx.getsockname()],
                                config(max_packet_size=8972, max_heaps=4))
        slots = []
        for _ in range(4):
            ig = send.ItemGroup(flavour=fl)
            ig.add_item(0x1000, 'data', '', (1 << 20,), dtype='>u4',
                        value=np.zeros(1 << 20, '>u4'))
            slots.append(ig.get_heap(descriptors='none'))
        window = collections.deque()
        t0 = time.perf_counter()
        sent = 0
        for i in range(heaps):
            window.append(stream.async_send_heap(slots[i % 4]))
            if len(window) == 4:
                sent += await window.popleft()
        for f in window:
            sent += await f
        return sent * 8 / (time.perf_counter() - t0) / 1e9
    return asyncio.run(main())


def run_tool(tool, rx, heaps):
    host, port = rx.getsockname()
    out = subprocess.run([tool, '--heap-size', str(4 << 20), '--packet', '8972',
                          '--addr-bits', '48', '--heaps', str(heaps), '--no-progress',
                          '{}:{}'.format(host, port)],
                         capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    m = re.search(r'([0-9.]+) Gb/s', text)
    if out.returncode != 0 or not m:
        print('speadcast-send failed: ' + text.strip(), file=sys.stderr)
        return None
    return float(m.group(1))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_tool = os.path.join(here, '..', 'build', 'tools', 'speadcast-send')
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seconds', type=float, default=2.0)
    ap.add_argument('--large-heaps', type=int, default=500)
    ap.add_argument('--speadcast-send', default=shutil.which('speadcast-send') or default_tool)
    ap.add_argument('--rounds', type=int, default=3,
                    help='repeats of each figure; the best is printed with the range')
    args = ap.parse_args()
    rx = sink()
    print('speadcast {} Python benchmark, UDP to a bound loopback socket nobody reads; '
          'best of {} rounds [range]'.format(speadcast.__version__, args.rounds))
    rows = [('sync', 'sync send_heap (1 KiB + 48-bit timestamp)', bench_sync),
            ('batch', 'send_heaps of 64 such heaps', bench_batch),
            ('asyncio', 'asyncio async_send_heap, 32 in flight', bench_asyncio)]
    for key, what, fn in rows:
        got = [fn(rx, args.seconds) for _ in range(args.rounds)]
        rates = [r for r, _ in got]
        cpu = min(c for _, c in got)
        print('{:<42} {:>10,.0f} heaps/s [{:,.0f}-{:,.0f}]  {:.2f} CPU us/heap; spead2 {}; '
              'target {}'.format(what, max(rates), min(rates), max(rates), cpu, SPEAD2[key],
                                 TARGET[key]))
    # Python and speadcast-send alternate, so both see the same machine load. CPU seconds
    # per Gbit (this process / the child) are printed too: on a shared machine they
    # compare the two better than wall-clock rates do.
    ours, tool, cpu_ours, cpu_tool = [], [], 0.0, 0.0
    gbit = args.large_heaps * (4 << 20) * 8 / 1e9
    for _ in range(args.rounds):
        c0 = cpu_seconds(resource.RUSAGE_SELF)
        ours.append(bench_large(rx, args.seconds, args.large_heaps))
        cpu_ours += cpu_seconds(resource.RUSAGE_SELF) - c0
        if os.path.exists(args.speadcast_send):
            c0 = cpu_seconds(resource.RUSAGE_CHILDREN)
            t = run_tool(args.speadcast_send, rx, args.large_heaps)
            if t is not None:
                tool.append(t)
                cpu_tool += cpu_seconds(resource.RUSAGE_CHILDREN) - c0
    print('{:<42} {:>10.2f} Gb/s    [{:.2f}-{:.2f}]  {:.4f} CPU s/Gbit; spead2 {}; target {}'
          .format('4 MiB heaps, 8972-byte packets', max(ours), min(ours), max(ours),
                  cpu_ours / (gbit * len(ours)), SPEAD2['large'], TARGET['large']))
    if tool:
        print('{:<42} {:>10.2f} Gb/s    [{:.2f}-{:.2f}]  {:.4f} CPU s/Gbit; Python/tool: '
              '{:.1f} % of the rate, {:.1f} % of the CPU per bit'.format(
                  'speadcast-send, same heaps, alternating', max(tool), min(tool), max(tool),
                  cpu_tool / (gbit * len(tool)), 100 * max(ours) / max(tool),
                  100 * (cpu_ours / len(ours)) / (cpu_tool / len(tool))))
    else:
        print('speadcast-send not found (--speadcast-send PATH): no comparison')
    rx.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
