import Foundation
import NIOCore
import NIOEmbedded
import TeleportAPI
@testable import TeleportProxy
import Testing

/// The `cluster-proxy` wire between a root's and a leaf's proxy (issue 20): lines, answers, and the
/// root side's handler driven over an embedded channel (no network).
@Suite("trusted clusters: the cluster-proxy wire")
struct TrustedClusterWireTests {
    @Test("answers: OK, OK with a payload, ERR with the leaf's reason, anything else", arguments: [
        ("OK", "", nil),
        ("OK {\"nodes\":[]}", "{\"nodes\":[]}", nil),
        ("ERR root user ann has no roles", nil, "leaf cluster leaf.example: root user ann has no roles"),
        ("HTTP/1.1 200 OK", nil, "answered something unexpected"),
        ("", nil, "answered something unexpected"),
    ] as [(String, String?, String?)])
    func answers(line: String, payload: String?, error: String?) throws {
        if let payload {
            #expect(try ClusterWire.parseAnswer(line, cluster: "leaf.example") == payload)
        } else {
            let thrown = #expect(throws: TeleportError.self) { try ClusterWire.parseAnswer(line, cluster: "leaf.example") }
            #expect(thrown?.message.contains(error ?? "-") == true, "\(String(describing: thrown))")
        }
    }

    @Test("lines split across reads; a refusal stays on one line")
    func lines() {
        var buffer = ByteBuffer(string: "OK\nSSH-2.0")
        #expect(ClusterWire.takeLine(&buffer) == "OK")
        #expect(buffer.readableBytes == 7)
        var partial = ByteBuffer(string: "no newline yet")
        #expect(ClusterWire.takeLine(&partial) == nil)
        #expect(partial.readableBytes == 14)
        #expect(ClusterWire.error("two\nlines\r") == "ERR two lines \n")
    }

    @Test("the root side sends the request, passes on the node's first bytes after OK, and fails on ERR")
    func answerHandler() throws {
        let request = ClusterWire.Request(op: ClusterWire.Request.dial, certificate: "ssh-ed25519-cert-v01@openssh.com AAAA", target: "node:0")
        let channel = EmbeddedChannel()
        let answered = channel.eventLoop.makePromise(of: String.self)
        try channel.pipeline.syncOperations.addHandler(ClusterAnswerHandler(request: request, cluster: "leaf.example", keepOpen: true, answered: answered))
        channel.pipeline.fireChannelActive()
        var sent = try #require(try channel.readOutbound(as: ByteBuffer.self))
        let line = try #require(ClusterWire.takeLine(&sent))
        #expect(try JSONDecoder().decode(ClusterWire.Request.self, from: Data(line.utf8)) == request)
        try channel.writeInbound(ByteBuffer(string: "O"))
        try channel.writeInbound(ByteBuffer(string: "K\nSSH-2.0-"))
        #expect(try answered.futureResult.wait() == "")
        // More of the node's bytes before the handlers behind ask to read: kept in order.
        try channel.writeInbound(ByteBuffer(string: "node\r\n"))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        channel.read()
        // Passed on at the next turn of the loop, not from inside the read (the user's side may be
        // in the middle of adding its handlers).
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        channel.embeddedEventLoop.run()
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "SSH-2.0-node\r\n"))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        try channel.writeInbound(ByteBuffer(string: "more"))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "more"))
        _ = try? channel.finish()

        let refused = EmbeddedChannel()
        let failed = refused.eventLoop.makePromise(of: String.self)
        try refused.pipeline.syncOperations.addHandler(ClusterAnswerHandler(request: request, cluster: "leaf.example", keepOpen: true, answered: failed))
        refused.pipeline.fireChannelActive()
        try refused.writeInbound(ByteBuffer(string: "ERR trusted cluster disabled\nSSH-2.0-never\r\n"))
        #expect(throws: TeleportError.self) { try failed.futureResult.wait() }
        #expect(try refused.readInbound(as: ByteBuffer.self) == nil, "nothing after a refusal reaches the user")
        _ = try? refused.finish()
    }
}
