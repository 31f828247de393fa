#!/usr/bin/python3
"""gw502 lab DNS server on 127.0.0.1:53 that knows no names: every query gets NXDOMAIN.

A lab host's /etc/resolv.conf points here, so an upstream name fails to resolve the way
it does against a real resolver (nginx logs "could not be resolved (3: Host not found)").
"""
import socket

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 53))
while True:
    query, peer = sock.recvfrom(512)
    if len(query) < 12:
        continue
    flags = 0x8000 | (query[2] & 0x01) << 8 | 0x0080 | 3  # response, RD copied, RA, NXDOMAIN
    header = query[:2] + flags.to_bytes(2, "big") + query[4:6] + b"\x00\x00\x00\x00\x00\x00"
    end = 12
    while end < len(query) and query[end] != 0:
        end += query[end] + 1
    question = query[12 : end + 5]  # the name, its root label, type and class
    sock.sendto(header + question, peer)
