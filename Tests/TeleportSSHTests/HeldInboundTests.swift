import NIOCore
import NIOEmbedded
import Testing
@testable import TeleportSSH

/// ``HeldInbound``: a gate that reads a one-line "hello\n", then holds what follows until released.
@Suite("held inbound bytes of a gate")
struct HeldInboundTests {
    final class LineGate: HoldingGate, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        var held = HeldInbound()
        var bytes: [UInt8] = []
        var release: (@Sendable () -> Void)?

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            guard !held.pass(data, buffer, context: context) else { return }
            bytes += buffer.readableBytesView
            guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return }
            held.decide(context: context, rest: bytes[(newline + 1)...])
            release = releaser(context: context)
        }
    }

    @Test func heldBytesPassInOrderOnceReleased() throws {
        let gate = LineGate()
        let channel = EmbeddedChannel(handler: gate)
        try channel.writeInbound(ByteBuffer(string: "hello\nfirst "))
        try channel.writeInbound(ByteBuffer(string: "second"))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil, "nothing passes while deciding")
        #expect(gate.held.phase == .deciding)
        gate.release?()
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "first "))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "second"))
        try channel.writeInbound(ByteBuffer(string: "later"))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "later"))
        _ = try channel.finish()
    }

    @Test func moreThanTheLimitWhileDecidingClosesTheConnection() throws {
        let gate = LineGate()
        let channel = EmbeddedChannel(handler: gate)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(string: "hello\n"))
        try channel.writeInbound(ByteBuffer(repeating: 0x61, count: HeldInbound.limit))
        #expect(channel.isActive)
        try channel.writeInbound(ByteBuffer(repeating: 0x61, count: 1))
        #expect(!channel.isActive)
    }
}
