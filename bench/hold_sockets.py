#!/usr/bin/env python3
"""Holds a synthetic host's sockets for the agent footprint benchmark.

Opens LISTENERS idle loopback listeners and CONNECTIONS established loopback
connections, spread over several worker processes because one process may
hold at most 20,000 open files here (each connection is two sockets: the
client end and the accepted end). Touches READY when everything is open and
then holds it until killed. Loopback only; meant to run in a private network
namespace (bench/agent-footprint.sh does that).

usage: hold_sockets.py LISTENERS CONNECTIONS PER_PROCESS READY
"""
import multiprocessing
import os
import signal
import socket
import sys


def hold(listeners, connections, ready):
    keep = []
    for _ in range(listeners):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        keep.append(s)
    if connections:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(4096)
        port = server.getsockname()[1]
        keep.append(server)
        while connections > 0:
            batch = min(connections, 1024)
            clients = []
            for _ in range(batch):
                c = socket.socket()
                c.connect(("127.0.0.1", port))
                clients.append(c)
            for _ in range(batch):
                conn, _ = server.accept()
                keep.append(conn)
            keep.extend(clients)
            connections -= batch
    ready.put(os.getpid())
    signal.pause()


def main():
    listeners, connections, per_process = (int(a) for a in sys.argv[1:4])
    ready_path = sys.argv[4]
    ready = multiprocessing.Queue()
    workers = []
    remaining = connections
    jobs = [(listeners, 0)]
    while remaining > 0:
        jobs.append((0, min(per_process, remaining)))
        remaining -= per_process
    for l, c in jobs:
        p = multiprocessing.Process(target=hold, args=(l, c, ready), daemon=True)
        p.start()
        workers.append(p)
    for _ in jobs:
        ready.get(timeout=300)
    with open(ready_path, "w") as f:
        f.write(" ".join(str(p.pid) for p in workers))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.pause()


if __name__ == "__main__":
    main()
