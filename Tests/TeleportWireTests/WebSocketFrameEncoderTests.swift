import Testing

@testable import TeleportWire

@Suite("WebSocket frames written for joined Kubernetes sessions")
struct WebSocketFrameEncoderTests {
    @Test("frames of every length encoding read back through the scanner, masked and not", arguments: [0, 1, 125, 126, 65535, 65536, 70000])
    func roundTrip(length: Int) throws {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 7) }
        for mask in [nil, [0x12, 0x34, 0x56, 0x78] as [UInt8]] {
            let bytes = WebSocketFrameEncoder.frame(opcode: 2, payload: payload, mask: mask)
            // The header is the shortest form RFC 6455 allows; a masked payload differs from the plain one.
            let header = length < 126 ? 2 : length <= 0xFFFF ? 4 : 10
            #expect(bytes.count == header + (mask == nil ? 0 : 4) + length)
            if mask != nil && length > 0 { #expect(Array(bytes.suffix(length)) != payload) }
            var scanner = WebSocketFrameScanner(payloadLimit: 1 << 20)
            // Fed in two pieces, split inside the header.
            let split = min(1, bytes.count)
            var frames = try scanner.feed(bytes[..<split])
            frames += try scanner.feed(bytes[split...])
            #expect(frames.count == 1)
            #expect(frames.first?.payload == payload && frames.first?.opcode == 2 && frames.first?.fin == true && frames.first?.length == length)
        }
    }

    @Test("a k8s channel frame starts its payload with the channel byte; FIN can be cleared for fragments")
    func channelAndFin() throws {
        var scanner = WebSocketFrameScanner()
        let frames = try scanner.feed(
            WebSocketFrameEncoder.channel(0, Array("ls\r".utf8), mask: WebSocketFrameEncoder.newMask())
                + WebSocketFrameEncoder.frame(opcode: 2, payload: [1, 2], fin: false))
        #expect(frames.map(\.payload) == [[0] + Array("ls\r".utf8), [1, 2]])
        #expect(frames.map(\.fin) == [true, false])
        #expect(WebSocketFrameEncoder.newMask().count == 4)
    }
}
