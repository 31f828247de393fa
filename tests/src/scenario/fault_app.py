#!/usr/bin/python3
"""gw502 lab app whose behaviour a scenario switches at run time, like a bad deploy.

Every request reads the mode file (--mode-file); its first word decides the answer:
  ok            200 with a small body (also when the file is missing)
  big_headers   200 with 64 KB of response headers
  close         closes the connection without answering
  status NNN    answers NNN itself (an app-made 5xx)
  crash         read at start only: the program exits with an error at once, its command
                line unchanged (a crash loop under Restart=always, as a bad config makes)
--unix PATH listens on a unix socket (mode 0666) instead of --bind/--port.
--tls-cert CERT --tls-key KEY serve HTTPS on --bind/--port (the handshake runs in the
request's thread, so a client that never finishes it holds up no one else).
--crash makes the program exit with an error right after start (a crash loop under
Restart=always). Standard library of /usr/bin/python3 only.
"""
import argparse
import os
import socketserver
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def read_mode(path):
    try:
        with open(path) as f:
            return f.read().split()
    except OSError:
        return ["ok"]


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

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            mode = read_mode(args.mode_file) or ["ok"]
            if mode[0] == "close":
                self.close_connection = True
                return
            status = 200
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
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)

        class TLSServer(ThreadingHTTPServer):
            def finish_request(self, request, client_address):
                try:
                    request = context.wrap_socket(request, server_side=True)
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
