import Testing
import TeleportWire

/// The strict HTTP/1.1 head parser and the chunked and WebSocket scanners the Kubernetes
/// service relays with.
@Suite("HTTP/1.1 heads and body framing")
struct HTTP1HeadTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func parsesARequestAndItsFraming() throws {
        let text = "POST /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nX-A:  b \r\n\r\nbody"
        let length = try #require(try HTTP1Head.length(Self.bytes(text)))
        #expect(length == text.utf8.count - 4)
        let head = try HTTP1Head.request(Array(Self.bytes(text).prefix(length)))
        #expect(head.first == "POST" && head.second == "/api/v1/namespaces/default/pods" && head.value("x-a") == "b")
        let framing = try head.requestFraming()
        #expect(framing == .length(12))
        let partial = try HTTP1Head.length(Self.bytes("GET / HTTP/1.1\r\nHost: x\r\n"))
        #expect(partial == nil)
    }

    @Test(arguments: [
        "GET / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        "GET http://evil/ HTTP/1.1\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
    ])
    func refusesSmugglingShapes(_ text: String) {
        #expect(throws: HTTP1Error.self) {
            let head = try HTTP1Head.request(Self.bytes(text))
            _ = try head.requestFraming()
        }
    }

    @Test func boundsTheHead() {
        let big = "GET / HTTP/1.1\r\n" + String(repeating: "X-A: b\r\n", count: 20_000)
        #expect(throws: HTTP1Error.self) { _ = try HTTP1Head.length(Self.bytes(big), limit: 64 * 1024) }
    }

    @Test func responseFraming() throws {
        let ok = try HTTP1Head.response(Self.bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
        let chunked = try ok.responseFraming(requestMethod: "GET")
        let head = try ok.responseFraming(requestMethod: "HEAD")
        #expect(chunked == .chunked && head == HTTP1Head.Framing.none)
        let closed = try HTTP1Head.response(Self.bytes("HTTP/1.1 200 OK\r\n\r\n"))
        let untilClose = try closed.responseFraming(requestMethod: "GET")
        #expect(untilClose == .untilClose)
        let switching = try HTTP1Head.response(Self.bytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"))
        let upgraded = try switching.responseFraming(requestMethod: "GET")
        #expect(switching.status == 101 && upgraded == HTTP1Head.Framing.none)
    }

    @Test func chunkedBodyEndsWhereItEnds() throws {
        let body = Self.bytes("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT")
        // At every split point the scanner finds the same end.
        for split in 0...body.count {
            var scanner = HTTP1ChunkedScanner()
            var consumed = try scanner.consume(body[..<split])
            if !scanner.isDone { consumed += try scanner.consume(body[split...]) }
            #expect(scanner.isDone && consumed == body.count - 4, "split \(split)")
        }
        var bad = HTTP1ChunkedScanner()
        #expect(throws: HTTP1Error.self) { _ = try bad.consume(Self.bytes("zz\r\n")) }
        var noCRLF = HTTP1ChunkedScanner()
        #expect(throws: HTTP1Error.self) { _ = try noCRLF.consume(Self.bytes("1\r\nab")) }
    }

    @Test func webSocketFrames() throws {
        // A masked binary frame (channel 4, a resize) and an unmasked one of 300 bytes.
        let payload: [UInt8] = [4] + Array("{\"Width\":100,\"Height\":30}".utf8)
        let mask: [UInt8] = [1, 2, 3, 4]
        var frame: [UInt8] = [0x82, 0x80 | UInt8(payload.count)] + mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset & 3] }
        let long = [UInt8](repeating: 1, count: 300)
        frame += [0x82, 126, 1, 44] + long
        for split in [0, 1, 3, 7, frame.count / 2, frame.count] {
            var scanner = WebSocketFrameScanner(payloadLimit: 100)
            let frames = try scanner.feed(frame[..<split]) + scanner.feed(frame[split...])
            #expect(frames.count == 2)
            #expect(frames.first?.payload == payload && frames.first?.opcode == 2)
            #expect(frames.last?.length == 300 && frames.last?.payload.count == 100)
        }
    }
}
