"""Connection-level guards of the HTTP client (no Beam).

Only publicly routable addresses are connected to, and the address checked
is the one connected to (no DNS rebinding); status line and headers are
bounded by the request's total deadline. Both live in urllib3's connection
classes, so every redirect hop and every retry of the client passes them.
"""
from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time

import urllib3

from .failures import FetchError

# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, RFC 6052/8215).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable, and so is any IPv4 address it carries inside."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        inner = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
        if any(address in prefix for prefix in _NAT64):
            inner.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return all(_is_public(embedded) for embedded in inner if embedded is not None)
    return True


def check_public_address(host: str, port: int) -> str:
    """The first address `host` resolves to; raises unless every one of them
    is publicly routable."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError("dns", f"cannot resolve {host}: {exc.strerror}") from exc
    except (UnicodeError, ValueError) as exc:  # e.g. a label longer than 63 characters
        raise FetchError("invalid-url", f"not a valid host name: {host[:100]}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not _is_public(address):
            raise FetchError("blocked-address", f"{host} resolves to non-public address {address}, "
                                                "and private networks are not allowed")
    return infos[0][4][0]


class _PinnedAddress:
    """Connections that go to the address the check approved: the host name
    is resolved and checked once, at connect time, so a DNS server cannot
    answer a public address to the check and a private one to the connect
    (DNS rebinding). TLS still verifies the certificate for the host name."""

    def _new_conn(self):
        name = self._dns_host
        self._dns_host = check_public_address(name, self.port)
        try:
            return super()._new_conn()
        finally:
            self._dns_host = name


# The total deadline of the request this thread is making (see _HeaderDeadline).
_REQUEST = threading.local()


@contextlib.contextmanager
def request_deadline(deadline: float):
    """Bound the headers of the requests this thread makes inside the block
    by `deadline` (a time.monotonic() value)."""
    _REQUEST.deadline = deadline
    try:
        yield
    finally:
        _REQUEST.deadline = None


class _HeaderDeadline:
    """Status line and headers bounded by the request's total deadline: the
    read timeout alone restarts with every byte, so a server trickling its
    headers could hold a thread for hours. At the deadline the socket is shut,
    as for a trickled body."""

    def getresponse(self):
        deadline = getattr(_REQUEST, "deadline", None)
        if deadline is None:
            return super().getresponse()
        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), self._cut_off)
        watchdog.daemon = True
        watchdog.start()
        try:
            return super().getresponse()
        finally:
            watchdog.cancel()

    def _cut_off(self):
        with contextlib.suppress(Exception):  # already closed
            self.sock.shutdown(socket.SHUT_RDWR)


def guarded_pools(pinned: bool) -> dict[str, type]:
    """urllib3 connection pools by scheme: header deadline always, pinned
    public addresses unless private networks are allowed."""
    mixins = (_HeaderDeadline, _PinnedAddress) if pinned else (_HeaderDeadline,)
    pools = {}
    for scheme, pool, connection in (("http", urllib3.HTTPConnectionPool, urllib3.connection.HTTPConnection),
                                     ("https", urllib3.HTTPSConnectionPool,
                                      urllib3.connection.HTTPSConnection)):
        bounded = type(f"Bounded{connection.__name__}", (*mixins, connection), {})
        pools[scheme] = type(f"Bounded{pool.__name__}", (pool,), {"ConnectionCls": bounded})
    return pools
