#!/usr/bin/env python3
"""A peer for the secret-redaction test: listens on 127.0.0.1:PORT, reads one ZBXD
frame per connection, writes its payload to LOG (as a careless daemon might log what it
received) and sends the same frame back. Stops on SIGTERM."""
import signal
import socket
import struct
import sys
import zlib

port, log_path = int(sys.argv[1]), sys.argv[2]
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
log = open(log_path, "a", buffering=1)
log.write("echo peer started\n")
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(16)


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


while True:
    conn, _ = srv.accept()
    conn.settimeout(5)
    try:
        head = read_exact(conn, 13)
        if head is None or head[:4] != b"ZBXD":
            continue
        size, reserved = struct.unpack("<II", head[5:13])
        body = read_exact(conn, size)
        if body is None:
            continue
        payload = zlib.decompress(body) if head[4] & 2 else body
        log.write("received: %s\n" % payload.decode("utf-8", "replace"))
        conn.sendall(head + body)
    except OSError:
        pass
    finally:
        conn.close()
