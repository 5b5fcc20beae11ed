import NIOCore
import NIOEmbedded
import TeleportAPI
import Testing

@testable import TeleportApp

/// The gate of a TCP app's connection holds the client's bytes while the session checks the
/// hand-off: at its mark it stops reading (backpressure) instead of closing, and the release
/// passes every held byte on and reads again.
@Suite("app hand-off gate: holding a TCP app's bytes")
struct AppHandoffGateTests {
    /// Counts the reads that reach the head of the pipeline (the socket).
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = NIOAny
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    /// Collects what the gate passes on.
    final class Sink: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var received = 0
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { received += unwrapInboundIn(data).readableBytes }
    }

    @Test func holdingStopsReadingInsteadOfClosing() throws {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let counter = ReadCounter()
        let promise = channel.eventLoop.makePromise(of: DatabaseHandoff.self)
        let gate = AppHandoffGate(handoff: promise, tcpApps: ["pg"])
        let sink = Sink()
        try channel.pipeline.syncOperations.addHandlers([counter, gate, sink])
        let frame = try DatabaseHandoff(userCertificatePEM: "cert", clientAddress: "127.0.0.1:5", parameters: [["app", "pg"]]).frame()
        try channel.writeInbound(channel.allocator.buffer(bytes: frame))
        let chunk = channel.allocator.buffer(repeating: 7, count: 64 * 1024)
        // Past the mark (1 MiB) while the session checks: held, the channel stays open, nothing passed on.
        var sent = 0
        for _ in 0..<17 {
            try channel.writeInbound(chunk)
            sent += chunk.readableBytes
        }
        #expect(channel.isActive)
        #expect(sink.received == 0)
        // Below the mark a read goes through; at the mark it waits for the release.
        let before = counter.reads
        channel.read()
        #expect(counter.reads == before, "the gate let a read through while holding \(sent) bytes")
        gate.release()
        #expect(sink.received == sent)
        #expect(counter.reads == before + 1, "the release did not read again")
        channel.read()
        #expect(counter.reads == before + 2)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func belowTheMarkReadsGoThrough() throws {
        let channel = EmbeddedChannel()
        let counter = ReadCounter()
        let promise = channel.eventLoop.makePromise(of: DatabaseHandoff.self)
        let gate = AppHandoffGate(handoff: promise, tcpApps: ["pg"])
        try channel.pipeline.syncOperations.addHandlers([counter, gate, Sink()])
        let frame = try DatabaseHandoff(userCertificatePEM: "cert", clientAddress: "127.0.0.1:5", parameters: [["app", "pg"]]).frame()
        try channel.writeInbound(channel.allocator.buffer(bytes: frame))
        try channel.writeInbound(channel.allocator.buffer(repeating: 1, count: 1000))
        let before = counter.reads
        channel.read()
        #expect(counter.reads == before + 1)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    /// Reads that did not stop (twice the mark held) close the connection: memory stays bounded.
    @Test func twiceTheMarkCloses() throws {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let promise = channel.eventLoop.makePromise(of: DatabaseHandoff.self)
        try channel.pipeline.syncOperations.addHandlers([AppHandoffGate(handoff: promise, tcpApps: ["pg"]), Sink()])
        let frame = try DatabaseHandoff(userCertificatePEM: "cert", clientAddress: "127.0.0.1:5", parameters: [["app", "pg"]]).frame()
        try channel.writeInbound(channel.allocator.buffer(bytes: frame))
        let chunk = channel.allocator.buffer(repeating: 7, count: 64 * 1024)
        for _ in 0..<33 where channel.isActive { try channel.writeInbound(chunk) }
        #expect(!channel.isActive)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }
}
