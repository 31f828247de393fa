#!/usr/bin/python3
"""gw502 lab DNS server on 127.0.0.1:53 that knows only the names of its zone file.

A lab host's /etc/resolv.conf points here. The zone file (--zone, default
/etc/gw502-lab/zone) holds `name address` lines and is read again for every query, so a
test changes a record the way a real DNS change lands: an A query for a listed name gets
its address (TTL 2 s), another type for it an empty answer, and every other name NXDOMAIN
(nginx logs "could not be resolved (3: Host not found)"). Without a zone file it knows no
names at all. Standard library of /usr/bin/python3 only.
"""
import argparse
import socket
import struct

TTL = 2


def load_zone(path):
    zone = {}
    try:
        with open(path) as f:
            for line in f:
                words = line.split()
                if len(words) == 2 and not words[0].startswith("#"):
                    zone[words[0].lower().rstrip(".")] = socket.inet_aton(words[1])
    except OSError:
        pass
    return zone


def question_name(query, end):
    labels, i = [], 12
    while i < end:
        n = query[i]
        labels.append(query[i + 1 : i + 1 + n].decode("ascii", "replace"))
        i += n + 1
    return ".".join(labels).lower()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--zone", default="/etc/gw502-lab/zone")
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 53))
    while True:
        query, peer = sock.recvfrom(512)
        if len(query) < 12:
            continue
        end = 12
        while end < len(query) and query[end] != 0:
            end += query[end] + 1
        if end + 5 > len(query):
            continue
        question = query[12 : end + 5]  # the name, its root label, type and class
        qtype = struct.unpack("!H", query[end + 1 : end + 3])[0]
        address = load_zone(args.zone).get(question_name(query, end))
        rcode = 0 if address is not None else 3  # NOERROR or NXDOMAIN
        answers = b""
        if address is not None and qtype == 1:
            # A pointer to the question's name, type A, class IN, TTL, the address.
            answers = struct.pack("!HHHIH", 0xC00C, 1, 1, TTL, 4) + address
        flags = 0x8000 | (query[2] & 0x01) << 8 | 0x0080 | rcode  # response, RD copied, RA
        count = 1 if answers else 0
        header = query[:2] + struct.pack("!HHHHH", flags, 1, count, 0, 0)
        sock.sendto(header + question + answers, peer)


if __name__ == "__main__":
    main()
