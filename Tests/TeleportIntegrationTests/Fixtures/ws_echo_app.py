# A WebSocket app for the application access tests (the `websockets` package from PyPI).
# GET /ws (a WebSocket): the first message is JSON naming the path and the handshake's headers
# (in order, duplicates kept); then every message comes back as it was sent (text or binary).
# Any other GET: an HTML page whose script opens wss://<its host>/ws, sends one text message and
# shows the answer (document.title becomes "echoed"; #log holds {"hello": ..., "echo": ...}).
import asyncio
import json
import sys

from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

PORT = int(sys.argv[1])

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>ws app</title></head>
<body><pre id="log">connecting</pre>
<script>
const log = document.getElementById("log");
const ws = new WebSocket("wss://" + location.host + "/ws");
let hello = null;
ws.onmessage = (event) => {
  if (hello === null) {
    hello = JSON.parse(event.data);
    ws.send("round trip from chromium");
    return;
  }
  log.textContent = JSON.stringify({hello: hello, echo: event.data});
  document.title = "echoed";
  ws.close();
};
ws.onerror = () => { log.textContent = "websocket error"; document.title = "failed"; };
</script></body></html>
"""


async def handler(ws):
    request = ws.request
    await ws.send(json.dumps({"path": request.path, "headers": [[k, v] for k, v in request.headers.raw_items()]}))
    async for message in ws:
        await ws.send(message)


def process_request(connection, request):
    if request.path.startswith("/ws"):
        return None
    headers = Headers([("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(PAGE)))])
    return Response(200, "OK", headers, PAGE)


async def main():
    async with serve(handler, "127.0.0.1", PORT, process_request=process_request, max_size=16 << 20) as server:
        await server.serve_forever()


asyncio.run(main())
