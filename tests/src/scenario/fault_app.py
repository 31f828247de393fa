#!/usr/bin/python3
"""gw502 lab app whose behaviour a scenario switches at run time, like a bad deploy.

Every request reads the mode file (--mode-file); its first word decides the answer:
  ok            200 with a small body (also when the file is missing)
  big_headers   200 with 64 KB of response headers
  close         closes the connection without answering
  status NNN    answers NNN itself (an app-made 5xx)
  hang          reads the request and never answers (holds the connection open)
  db_down       connects to its database (127.0.0.1:5432, where nothing listens) for
                every request, logs the driver's error (psycopg2's wording) and answers 500
  reset         reads the request, then closes with SO_LINGER {1, 0}: the kernel answers
                with a TCP RST instead of a FIN (on a unix socket there is no RST: the
                proxy reads an end of file)
  crash         read at start only: the program exits with an error at once, its command
                line unchanged (a crash loop under Restart=always, as a bad config makes)
  starting      read at start only: the program stays up but binds nothing; it says it
                waits for its schema migrations and sleeps (an app still starting, or one
                whose bind never comes), its command line unchanged
--unix PATH listens on a unix socket (mode 0666) instead of --bind/--port.
--tls-cert CERT --tls-key KEY serve HTTPS on --bind/--port (the handshake runs in the
request's thread, so a client that never finishes it holds up no one else). The files are
read again when they change, as servers that pick up a renewed certificate do; a pair
that does not load keeps the last good one.
--crash makes the program exit with an error right after start (a crash loop under
Restart=always). Standard library of /usr/bin/python3 only.
"""
import argparse
import os
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def read_mode(path):
    try:
        with open(path) as f:
            return f.read().split()
    except OSError:
        return ["ok"]


class Certs:
    """The TLS context of the current certificate files, reloaded when they change."""

    def __init__(self, cert, key):
        self.paths = (cert, key)
        self.stamp = None
        self.context = None
        self.lock = threading.Lock()

    def current(self):
        with self.lock:
            try:
                stamp = tuple(os.stat(p).st_mtime_ns for p in self.paths)
            except OSError:
                return self.context
            if stamp != self.stamp:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                try:
                    context.load_cert_chain(*self.paths)
                except (ssl.SSLError, OSError) as e:
                    sys.stderr.write("app: certificate not loaded, keeping the last: %s\n" % e)
                    return self.context
                self.context, self.stamp = context, stamp
            return self.context


def database_error():
    """The error of a real connection attempt to the app's database, as psycopg2 says it."""
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
        return None
    except OSError as e:
        return (
            'psycopg2.OperationalError: connection to server at "127.0.0.1", port 5432 '
            "failed: %s\n\tIs the server running on that host and accepting TCP/IP "
            "connections?" % (e.strerror or e)
        )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--mode-file", default="/etc/gw502-lab/mode")
    parser.add_argument("--unix")
    parser.add_argument("--crash", action="store_true")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    if args.crash or read_mode(args.mode_file)[:1] == ["crash"]:
        sys.stderr.write("app: cannot load settings: /etc/gw502-lab/app.ini missing\n")
        sys.exit(3)
    if read_mode(args.mode_file)[:1] == ["starting"]:
        sys.stderr.write("app: waiting for schema migrations to finish before listening\n")
        sys.stderr.flush()
        while True:
            time.sleep(3600)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            mode = read_mode(args.mode_file) or ["ok"]
            if mode[0] == "close":
                self.close_connection = True
                return
            if mode[0] == "reset":
                self.reset()
                return
            if mode[0] == "hang":
                time.sleep(3600)
                return
            status = 200
            if mode[0] == "db_down":
                error = database_error()
                if error:
                    sys.stderr.write("app: GET %s failed: %s\n" % (self.path, error))
                    status = 500
            if mode[0] == "status" and len(mode) > 1 and mode[1].isdigit():
                status = int(mode[1])
            body = b"hello from the lab app\n"
            self.send_response(status)
            if mode[0] == "big_headers":
                for i in range(64):
                    self.send_header("X-Filler-%02d" % i, "x" * 1000)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def reset(self):
            """Close at once with a zero linger time: the kernel sends RST, not FIN.

            The buffered reader holds a reference to the socket, so it is closed first;
            otherwise `close()` would leave the descriptor open and the server's
            `shutdown(SHUT_WR)` would send a FIN first.
            """
            self.close_connection = True
            conn = self.connection
            if conn.family != socket.AF_UNIX:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            conn.close()

        def log_message(self, fmt, *fmt_args):
            peer = self.client_address[0] if isinstance(self.client_address, tuple) else "unix"
            sys.stderr.write("%s %s\n" % (peer, fmt % fmt_args))

    if args.unix:
        if os.path.exists(args.unix):
            os.unlink(args.unix)
        server = UnixHTTPServer(args.unix, Handler)
        os.chmod(args.unix, 0o666)
        print("app listening on unix:%s" % args.unix, flush=True)
    elif args.tls_cert:
        certs = Certs(args.tls_cert, args.tls_key)
        if certs.current() is None:
            sys.exit("app: cannot load %s" % args.tls_cert)

        class TLSServer(ThreadingHTTPServer):
            def finish_request(self, request, client_address):
                try:
                    request = certs.current().wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    sys.stderr.write("%s tls handshake failed: %s\n" % (client_address[0], e))
                    return
                super().finish_request(request, client_address)

        server = TLSServer((args.bind, args.port), Handler)
        print("app listening on https://%s:%d" % (args.bind, args.port), flush=True)
    else:
        server = ThreadingHTTPServer((args.bind, args.port), Handler)
        print("app listening on %s:%d" % (args.bind, args.port), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
