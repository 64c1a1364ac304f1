#!/usr/bin/env python3
"""A DNS responder for the federation test peers that knows no name at all.

Every query, over UDP or TCP, gets an immediate NXDOMAIN answer (RFC 1035
§4.1.1, RCODE 3) that repeats the question. The peers' resolvers point at it
so that the SRV lookups for the `.test` names (RFC 6120 §3.2.1) fail at once
instead of waiting on a resolver that cannot reach anything; the peers then
fall back to the address record, which they read from /etc/hosts, and to
port 5269.

It only listens on the address given (a loopback address), and stops on
SIGTERM or SIGINT.

Usage: nxdns.py --addr 127.0.0.53 [--port 53] [--log FILE]
"""

import argparse
import selectors
import signal
import socket
import struct
import sys
import time

HEADER = struct.Struct("!HHHHHH")
# Refuse anything bigger than a single question could need.
MAX_TCP_MESSAGE = 4096
# A TCP client that sends nothing for this long is dropped.
TCP_IDLE_SECONDS = 5.0
MAX_TCP_CLIENTS = 64


def question_end(message: bytes) -> int:
    """Offset just past the first question, or -1 when it is malformed."""
    offset = HEADER.size
    # QNAME: labels, ended by a zero byte (compression cannot occur in a
    # question that is the first thing after the header).
    while True:
        if offset >= len(message):
            return -1
        length = message[offset]
        if length == 0:
            offset += 1
            break
        if length & 0xC0:
            return -1
        offset += 1 + length
    offset += 4  # QTYPE, QCLASS
    return offset if offset <= len(message) else -1


def answer(message: bytes):
    """The NXDOMAIN (or FORMERR) reply to one DNS message, or None to drop it."""
    if len(message) < HEADER.size:
        return None
    ident, flags, qdcount, _an, _ns, _ar = HEADER.unpack_from(message)
    if flags & 0x8000:  # a response: never answer those
        return None
    opcode = (flags >> 11) & 0xF
    rd = flags & 0x0100
    end = question_end(message) if qdcount == 1 else -1
    if opcode != 0 or end < 0:
        # FORMERR for a malformed query, NOTIMP for other opcodes.
        rcode = 4 if opcode != 0 else 1
        return HEADER.pack(ident, 0x8000 | (opcode << 11) | rd | rcode, 0, 0, 0, 0)
    # QR=1, RD copied, RA=1, RCODE=3 (NXDOMAIN).
    reply_flags = 0x8000 | rd | 0x0080 | 3
    return HEADER.pack(ident, reply_flags, 1, 0, 0, 0) + message[HEADER.size : end]


def describe(message: bytes) -> str:
    end = question_end(message)
    if end < 0:
        return "malformed"
    labels, offset = [], HEADER.size
    while message[offset]:
        length = message[offset]
        labels.append(message[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    qtype = struct.unpack_from("!H", message, offset + 1)[0]
    return f"{'.'.join(labels)}. type {qtype}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", required=True)
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--log", help="append one line per query to this file")
    args = parser.parse_args()
    if not args.addr.startswith("127."):
        parser.error("--addr must be a loopback address")

    log = open(args.log, "a", buffering=1) if args.log else None

    def note(proto, peer, message):
        if log:
            log.write(f"{time.strftime('%H:%M:%S')} {proto} {peer[0]}:{peer[1]} {describe(message)} -> NXDOMAIN\n")

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    udp.bind((args.addr, args.port))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((args.addr, args.port))
    tcp.listen(16)
    udp.setblocking(False)
    tcp.setblocking(False)

    running = True

    def stop(_signum, _frame):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    sel = selectors.DefaultSelector()
    sel.register(udp, selectors.EVENT_READ, "udp")
    sel.register(tcp, selectors.EVENT_READ, "listen")
    clients = {}  # socket -> (peer, buffer, last activity)

    while running:
        for key, _ in sel.select(timeout=1.0):
            kind = key.data
            if kind == "udp":
                try:
                    message, peer = udp.recvfrom(MAX_TCP_MESSAGE)
                except OSError:
                    continue
                reply = answer(message)
                if reply is not None:
                    note("udp", peer, message)
                    try:
                        udp.sendto(reply, peer)
                    except OSError:
                        pass
            elif kind == "listen":
                try:
                    conn, peer = tcp.accept()
                except OSError:
                    continue
                if len(clients) >= MAX_TCP_CLIENTS:
                    conn.close()
                    continue
                conn.setblocking(False)
                clients[conn] = [peer, b"", time.monotonic()]
                sel.register(conn, selectors.EVENT_READ, "tcp")
            else:
                conn = key.fileobj
                state = clients[conn]
                try:
                    data = conn.recv(MAX_TCP_MESSAGE)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(conn)
                    del clients[conn]
                    conn.close()
                    continue
                state[1] += data
                state[2] = time.monotonic()
                # RFC 1035 §4.2.2: each message is preceded by its length.
                while len(state[1]) >= 2:
                    length = struct.unpack_from("!H", state[1])[0]
                    if length > MAX_TCP_MESSAGE:
                        state[1] = b""
                        break
                    if len(state[1]) < 2 + length:
                        break
                    message, state[1] = state[1][2 : 2 + length], state[1][2 + length :]
                    reply = answer(message)
                    if reply is not None:
                        note("tcp", state[0], message)
                        try:
                            conn.setblocking(True)
                            conn.settimeout(2.0)
                            conn.sendall(struct.pack("!H", len(reply)) + reply)
                            conn.setblocking(False)
                        except OSError:
                            pass
        now = time.monotonic()
        for conn in [c for c, s in clients.items() if now - s[2] > TCP_IDLE_SECONDS]:
            sel.unregister(conn)
            del clients[conn]
            conn.close()

    for conn in list(clients):
        conn.close()
    udp.close()
    tcp.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
