"""Isolation: a private network namespace (Linux) for the server, made without the ``ip`` or ``unshare``
commands, with only a loopback interface inside.

Why its own module: Milvus 2.3 binds its gRPC ports on all interfaces whatever its settings say
(milvus-io/milvus#26538); inside its own namespace nothing it listens on is reachable from the host.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import socket
import struct
import sys
import threading
from pathlib import Path

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1  # ioctls to bring `lo` up without `ip`
PR_SET_PDEATHSIG = 1           # prctl option: signal the child when its parent dies
# Inside its own namespace every server has Milvus's default ports to itself.
NAMESPACE_PROXY_PORT = 19530
NAMESPACE_HEALTH_PORT = 9091
NAMESPACE_ETCD_PORT = 2379
CLONE_NEWUSER = 0x10000000     # unshare(2) flags: a user namespace lets an unprivileged user
CLONE_NEWNET = 0x40000000      # make a network namespace


class Namespace:
    """The keeper's end of a server's network namespace: a socket pair to a tiny process inside,
    which makes TCP sockets there and passes them back. A socket belongs to the namespace it was
    made in, so the keeper connects it to the server's loopback from the host: one relay, in the
    keeper, and no file or port of its own."""

    def __init__(self) -> None:
        self._channel, inner = socket.socketpair()
        self.inner_fd = inner.detach()
        self._lock = threading.Lock()

    def handed_over(self) -> None:
        """The namespace's process has its end now; the keeper drops its copy."""
        os.close(self.inner_fd)

    def socket(self) -> socket.socket:
        with self._lock:
            self._channel.sendall(b"s")
            _, fds, _, _ = socket.recv_fds(self._channel, 1, 1)
        if not fds:
            raise ConnectionError("the server's namespace is gone")
        return socket.socket(fileno=fds[0])

    def close(self) -> None:
        self._channel.close()


def isolation_available() -> bool:
    """Whether this process may make a user + network namespace (tried in a forked child)."""
    if not sys.platform.startswith("linux"):
        return False
    child = os.fork()
    if child == 0:
        try:
            enter_private_network()
        except OSError:
            os._exit(1)
        os._exit(0)
    return os.waitpid(child, 0)[1] == 0


def enter_private_network() -> None:
    """Move this (single-threaded) process into new user and network namespaces, keeping its own
    uid and gid, and bring the namespace's only interface, loopback, up."""
    uid, gid = os.getuid(), os.getgid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare(CLONE_NEWUSER | CLONE_NEWNET): {os.strerror(errno)}")
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
    Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(control, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(control, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def die_with_parent() -> None:
    """The kernel kills this process (and what it executes) when its parent dies."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def exec_isolated(channel_fd: int, command: list) -> None:
    """Enter a private namespace; fork the socket maker for the keeper; become Milvus."""
    enter_private_network()
    parent = os.getpid()
    if os.fork() == 0:
        die_with_parent()  # dies with Milvus, its parent from the exec on
        if os.getppid() == parent:
            _make_sockets(socket.socket(fileno=channel_fd))
        os._exit(0)
    os.close(channel_fd)
    die_with_parent()
    os.execv(command[0], command)


def _make_sockets(channel: socket.socket) -> None:
    """Inside the namespace: one unconnected TCP socket per byte the keeper sends."""
    while channel.recv(1):
        with socket.socket() as made:
            socket.send_fds(channel, [b"s"], [made.fileno()])
