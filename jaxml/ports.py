"""TCP ports on this host, for the cluster start-up: is one free for a server, and a free one to use.

JAX's coordinator (process 0) serves on ``[::]:port`` — every interface, IPv4 included — and segfaults when the
port is taken, so the launchers check first (``jaxml.parallel.initialize_distributed``, ``local_cluster``)."""
from __future__ import annotations

import errno
import socket


def free_port() -> int:
    """A port no socket uses now (the kernel's pick); another process may still take it before we do."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` on every interface, as the coordinator does: a socket bound or
    listening there on any address makes it busy; a closed connection still in TIME_WAIT does not."""
    families = ([(socket.AF_INET6, "::")] if socket.has_ipv6 else []) + [(socket.AF_INET, "0.0.0.0")]
    for family, host in families:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)   # dual stack: takes IPv4 too
                s.bind((host, port))
            return True
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return False
    return True         # neither family could be tried (no network stack?): let the runtime report it
