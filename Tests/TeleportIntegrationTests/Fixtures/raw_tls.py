# Sends hand-made HTTP/1.1 bytes over TLS to the proxy's web port (server name = an app's public
# address, optionally with a client certificate) and prints what comes back, for the attack
# tests. Modes:
#   dup-cl        POST with two different Content-Length headers, a request hidden behind it
#   obs-fold      a header continued on the next line (obsolete line folding)
#   huge-headers  10 MB of headers
#   abort-upload  a POST declaring 5 GB, of which --megabytes MB are sent before the socket closes
#                 (prints "sent N" and the seconds taken)
#   pipelined     two GETs (/p1, then /p2 with Connection: close) sent in one write
import argparse
import socket
import ssl
import sys
import time


def connect(args):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if args.cert:
        context.load_cert_chain(args.cert, args.key)
    raw = socket.create_connection(("127.0.0.1", args.port), timeout=30)
    return context.wrap_socket(raw, server_hostname=args.server_name)


def read_all(s):
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionError, ssl.SSLError, socket.timeout, OSError):
            break
        if not chunk:
            break
        data += chunk
    return data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server-name", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--header", action="append", default=[], help="NAME: VALUE added to the request (pipelined)")
    args = parser.parse_args()
    host = f"{args.server_name}:{args.port}"
    s = connect(args)
    if args.mode == "dup-cl":
        s.sendall((f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\nContent-Length: 48\r\n\r\n"
                   f"abcdGET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n").encode())
    elif args.mode == "obs-fold":
        s.sendall(f"GET /folded HTTP/1.1\r\nHost: {host}\r\nX-Folded: first\r\n second\r\n\r\n".encode())
    elif args.mode == "huge-headers":
        s.sendall(f"GET /huge HTTP/1.1\r\nHost: {host}\r\n".encode())
        line = ("X-Filler: " + "a" * 8000 + "\r\n").encode()
        try:
            for _ in range((10 << 20) // len(line)):
                s.sendall(line)
            s.sendall(b"\r\n")
        except (ConnectionError, ssl.SSLError, OSError) as error:
            print(f"send stopped: {type(error).__name__}")
    elif args.mode == "pipelined":
        extra = "".join(h + "\r\n" for h in args.header)
        s.sendall((f"GET /p1 HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n"
                   f"GET /p2 HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n").encode())
    elif args.mode == "abort-upload":
        s.sendall(f"POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: {5 << 30}\r\n\r\n".encode())
        block = b"\0" * (1 << 20)
        started = time.monotonic()
        sent = 0
        try:
            for _ in range(args.megabytes):
                s.sendall(block)
                sent += 1
        except (ConnectionError, ssl.SSLError, OSError) as error:
            print(f"send stopped: {type(error).__name__}")
        print(f"sent {sent} MB in {time.monotonic() - started:.1f} s", flush=True)
        s.close()
        return
    data = read_all(s)
    sys.stdout.write(data.decode("utf-8", "replace"))
    sys.stdout.write("\n")


main()
