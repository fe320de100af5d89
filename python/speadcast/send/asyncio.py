"""speadcast.send.asyncio: streams whose sends return asyncio futures.

Completions reach the event loop through the stream's completion fd (loop.add_reader):
no thread per send, and the library's writer thread never takes the GIL. A full queue
fails the send's future with the queue-full OSError (ENOBUFS), as in spead2.
"""

import asyncio
import functools
import weakref

from . import (Stream as _SyncStream, UdpStream as _UdpStream, TcpStream as _TcpStream,
               InprocStream as _InprocStream, UdpIbvStream as _UdpIbvStream,
               BytesStream as _BytesStream)


def _current_loop():
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.get_event_loop()


def _on_readable(ref):
    stream = ref()
    if stream is not None:
        stream._process_completions()


def _detach(loop, fd):
    if not loop.is_closed():
        loop.remove_reader(fd)


class _AsyncStream:
    """Mixin: opens the stream with a completion queue and watches it from the loop."""

    _completion_queue = True
    _default_on_full = 'fail'
    _defer_attach = False

    def _open_doc(self, text, path, thread_pool, keep=None):
        super()._open_doc(text, path, thread_pool, keep)
        if not self._defer_attach:
            self._attach(_current_loop())

    def _attach(self, loop):
        fd = self._attach_loop(loop)
        self.loop = loop
        # A weak reference, so the loop does not keep a dropped stream alive.
        loop.add_reader(fd, _on_readable, weakref.ref(self))
        # Runs once: at close(), or when the stream is collected (before its fd closes),
        # so the loop never watches an fd number the stream no longer owns.
        self._detach = weakref.finalize(self, _detach, loop, fd)

    def _adopt_flavour(self, flavour):
        # The reopened stream has a new completion fd: watch that one instead.
        self._detach()
        super()._adopt_flavour(flavour)
        self._attach(self.loop)

    def close(self):
        detach = getattr(self, '_detach', None)
        if detach is not None:
            detach()
        super().close()


class Stream(_AsyncStream, _SyncStream):
    """Stream.from_config(config) with asyncio sends."""


class UdpStream(_AsyncStream, _UdpStream):
    pass


class InprocStream(_AsyncStream, _InprocStream):
    pass


class BytesStream(_AsyncStream, _BytesStream):
    pass


class UdpIbvStream(_AsyncStream, _UdpIbvStream):
    pass


class TcpStream(_AsyncStream, _TcpStream):
    """TcpStream(thread_pool, socket, config) for a connected socket, or
    ``await TcpStream.connect(thread_pool, endpoints, config, ...)``."""

    @classmethod
    async def connect(cls, *args, **kwargs):
        """Connects without blocking the event loop (the connect runs in a worker thread)."""
        loop = asyncio.get_running_loop()
        self = cls.__new__(cls)
        self._defer_attach = True
        await loop.run_in_executor(None, functools.partial(_TcpStream.__init__, self, *args,
                                                           **kwargs))
        self._attach(loop)
        return self


def from_config(config, thread_pool=None):
    """An asyncio stream on any transport from a config (dict, JSON text or path)."""
    return Stream.from_config(config, thread_pool)


__all__ = ['Stream', 'UdpStream', 'TcpStream', 'InprocStream', 'BytesStream', 'UdpIbvStream',
           'from_config']
