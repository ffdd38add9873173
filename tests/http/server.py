#!/usr/bin/env python3
"""A small HTTP(S) server for the fetch tests, from Python's standard library.

    server.py ROOT [CERT KEY]

Serves the files under ROOT on 127.0.0.1 ($PORT, or a free port; printed as
the first line of stdout once listening; a directory serves its index.html), over TLS when CERT and KEY are given. Every
request is appended to ROOT/requests.log as "METHOD PATH STATUS".

Per file F:
  * ETag is the SHA-256 of its contents; If-None-Match with it answers 304.
  * F.headers, when present, holds extra "Name: value" lines to send.
  * F.redirect, when present (F itself need not be), holds a URL to
    redirect to.
  * F.auth, when present, holds the Authorization value F needs (else 401).
  * F.status, when present, holds a status to answer with (and no body),
    once per line: "202" then "200" defers a signature once.
  * F.cut, when present, holds a byte count: the next GET of F announces
    all of F but sends only that many bytes and closes the connection (a
    download breaking off); F.cut is then removed.
  * "Range: bytes=N-" is answered with 206 and the rest of F (logged as
    "GET PATH 206 bytes=N-"), unless an If-Range names another ETag (200,
    all of F).
Special paths:
  * /endless        an unbounded body (chunked), for size limits.
  * /loop           a redirect to itself.
  * /redirect?to=U  a redirect to U.
"""

import hashlib
import http.server
import os
import ssl
import sys
import threading
import urllib.parse

ROOT = sys.argv[1]
LOG_LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def record(self, status, extra=""):
        with LOG_LOCK, open(os.path.join(ROOT, "requests.log"), "a") as log:
            log.write(f"{self.command} {self.path} {status}{extra}\n")

    def answer(self, status, body=b"", headers=()):
        self.record(status)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/endless":
            self.record(200)
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                while True:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                return
        if url.path == "/loop":
            return self.answer(302, headers=[("Location", "/loop")])
        if url.path == "/redirect":
            to = urllib.parse.parse_qs(url.query)["to"][0]
            return self.answer(302, headers=[("Location", to)])
        path = os.path.normpath(os.path.join(ROOT, url.path.lstrip("/")))
        if path != ROOT and not path.startswith(ROOT + os.sep):
            return self.answer(404, b"not found\n")
        if os.path.isfile(path + ".redirect"):
            with open(path + ".redirect") as f:
                return self.answer(302, headers=[("Location", f.read().strip())])
        if os.path.isdir(path) and os.path.isfile(os.path.join(path, "index.html")):
            path = os.path.join(path, "index.html")
        if not os.path.isfile(path):
            return self.answer(404, b"not found\n")
        if os.path.exists(path + ".auth"):
            with open(path + ".auth") as f:
                if self.headers.get("Authorization") != f.read().strip():
                    return self.answer(401, b"unauthorized\n")
        status_file = path + ".status"
        if os.path.exists(status_file):
            with open(status_file) as f:
                lines = f.read().split()
            if lines:
                with open(status_file, "w") as f:
                    f.write("\n".join(lines[1:]))
                if lines[0] != "200":
                    return self.answer(int(lines[0]))
        with open(path, "rb") as f:
            body = f.read()
        etag = '"%s"' % hashlib.sha256(body).hexdigest()
        headers = [("ETag", etag)]
        if os.path.exists(path + ".headers"):
            with open(path + ".headers") as f:
                for line in f:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers.append((name.strip(), value.strip()))
        if self.headers.get("If-None-Match") == etag:
            return self.answer(304, headers=headers)
        headers.append(("Accept-Ranges", "bytes"))
        cut_file = path + ".cut"
        if os.path.exists(cut_file):
            with open(cut_file) as f:
                cut = int(f.read().strip())
            os.remove(cut_file)
            self.record(200, " cut")
            self.send_response(200)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        wanted = self.headers.get("Range", "")
        if_range = self.headers.get("If-Range")
        if wanted.startswith("bytes=") and wanted.endswith("-") and if_range in (None, etag):
            start = int(wanted[len("bytes="):-1])
            if start >= len(body):
                return self.answer(416, headers=[("Content-Range", f"bytes */{len(body)}")])
            self.record(206, f" {wanted}")
            self.send_response(206)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            self.wfile.write(body[start:])
            return
        self.answer(200, body, headers)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def main():
    server = Server(("127.0.0.1", int(os.environ.get("PORT", "0"))), Handler)
    if len(sys.argv) == 4:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
