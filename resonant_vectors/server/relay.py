"""The relay: the host's one loopback port, copied to the server's proxy inside its private network.

Why its own module: it sits on the path of every search (``bench/relay.py`` measures it), and it is
the one door into a server that is otherwise unreachable (``isolation``).
"""
from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Callable

from resonant_vectors.server.errors import EmbeddedMilvusError
from resonant_vectors.server.isolation import NAMESPACE_PROXY_PORT

SERVER_LOOPBACK = "127.0.0.1"
FIRST_PORT = 19530             # the host port clients use is the first free one from here
RELAY_BUFFER_BYTES = 1 << 18   # a search answer of k=300 fits in one read


class Relay:
    """The host's 127.0.0.1:port, relayed to the proxy inside the server's namespace.

    It sits on the path of every search, so it copies with one thread per direction and large
    reads, with Nagle off on both sides (a gRPC request is one small write). Measured with
    ``bench/relay.py``: a search of k=300 through it took no longer than one made directly on the
    server's loopback inside its namespace.
    """

    def __init__(self, dial: Callable[[int], socket.socket]) -> None:
        self._dial = dial
        # Until root's default password is replaced, only the keeper's own client is let in.
        self.only_own_connections = True
        self._listener = listen_on_first_free_port(FIRST_PORT)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self._listener.accept()
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        if self.only_own_connections and not _from_this_process(client):
            client.close()
            return
        try:
            upstream = self._dial(NAMESPACE_PROXY_PORT)
        except OSError:  # the server is restarting: the client retries
            client.close()
            return
        upstream.settimeout(None)
        for end in (client, upstream):
            end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        towards_server = threading.Thread(target=_pump, args=(client, upstream), daemon=True)
        towards_server.start()
        _pump(upstream, client)
        towards_server.join()
        client.close()
        upstream.close()


def _from_this_process(connection: socket.socket) -> bool:
    """Whether the other end of a loopback connection is a socket of this process: its address
    is the local address of a TCP socket whose inode is among this process's descriptors (gRPC's
    sockets are IPv6 ones, with the IPv4-mapped address)."""
    host, port = connection.getpeername()[:2]
    ipv4 = f"{socket.htonl(int.from_bytes(socket.inet_aton(host), 'big')):08X}"
    peers = {f"{ipv4}:{port:04X}", f"0000000000000000FFFF0000{ipv4}:{port:04X}"}
    own = set()
    for descriptor in os.listdir("/proc/self/fd"):
        try:
            own.add(os.readlink(f"/proc/self/fd/{descriptor}"))
        except OSError:  # closed meanwhile by another thread
            continue
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/self/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] in peers and f"socket:[{fields[9]}]" in own:
                return True
    return False


def _pump(source: socket.socket, target: socket.socket) -> None:
    """Copy one direction until either side ends; then end both, which ends the other direction.
    One buffer, reused: a fresh 256 KiB bytes object per read cost more than the copy."""
    buffer = memoryview(bytearray(RELAY_BUFFER_BYTES))
    try:
        while received := source.recv_into(buffer):
            target.sendall(buffer[:received])
    except OSError:
        pass
    finally:
        for end in (source, target):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def listen_on_first_free_port(start: int) -> socket.socket:
    """Bound and listening at once, so no other start can take the port meanwhile."""
    for port in range(start, start + 1000):
        listener = socket.socket()
        try:
            listener.bind((SERVER_LOOPBACK, port))
        except OSError:
            listener.close()
            continue
        listener.listen(64)
        return listener
    raise EmbeddedMilvusError(f"no free port on {SERVER_LOOPBACK} from {start} to {start + 999}")
