# A WebSocket client for the application access tests (the `websockets` package from PyPI):
# connects to URL (TLS to 127.0.0.1:PORT with the URL's host as server name), optionally with a
# client certificate, prints the app's first message (its handshake headers), then checks a text
# round trip, a 4 MiB binary round trip and 200 small messages in a row.
# Prints "status: N" and the body when the handshake is refused (exit 2); exit 1 on a failed check.
import argparse
import asyncio
import json
import os
import ssl
import sys
import time
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--header", action="append", default=[], help="NAME: VALUE added to the handshake")
    args = parser.parse_args()
    parts = urlsplit(args.url)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if args.cert:
        context.load_cert_chain(args.cert, args.key)
    extra = [tuple(h.split(": ", 1)) for h in args.header]
    started = time.monotonic()
    try:
        async with connect(
            args.url, ssl=context, host="127.0.0.1", port=parts.port, server_hostname=parts.hostname,
            additional_headers=extra, max_size=16 << 20, open_timeout=30,
            ping_interval=None,  # no pings: bytes held anywhere on the way show as a timeout
        ) as ws:
            print(f"timing: handshake {time.monotonic() - started:.2f} s", flush=True)
            first = await asyncio.wait_for(ws.recv(), 30)
            print("hello: " + first, flush=True)
            failed = False

            def check(condition, what):
                nonlocal failed
                print(("ok: " if condition else "FAIL: ") + what + f" ({time.monotonic() - started:.2f} s)", flush=True)
                failed = failed or not condition

            await ws.send("hello through teleport")
            check(await asyncio.wait_for(ws.recv(), 30) == "hello through teleport", "text round trip")
            blob = os.urandom(4 << 20)
            await ws.send(blob)
            check(await asyncio.wait_for(ws.recv(), 60) == blob, "4 MiB binary round trip")
            for i in range(200):
                await ws.send(f"message {i}")
            answers = [await asyncio.wait_for(ws.recv(), 30) for _ in range(200)]
            check(answers == [f"message {i}" for i in range(200)], "200 messages in order")
            print(f"timing: done {time.monotonic() - started:.2f} s", flush=True)
            return 1 if failed else 0
    except InvalidStatus as refused:
        response = refused.response
        print(f"status: {response.status_code}")
        print(response.body.decode("utf-8", "replace") if response.body else "")
        return 2


sys.exit(asyncio.run(main()))
