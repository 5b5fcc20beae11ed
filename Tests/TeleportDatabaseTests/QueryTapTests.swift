import NIOCore
import NIOEmbedded
import TeleportAPI
@testable import TeleportDatabase
import TeleportWire
import Testing

/// The tap between the client and the database: every simple query is audited before its bytes
/// go on; a query the audit outbox refuses ends the session and never reaches the database.
@Suite("query tap")
struct QueryTapTests {
    static func query(_ text: String) -> [UInt8] {
        let body = Array(text.utf8) + [0]
        let length = UInt32(body.count + 4)
        return [UInt8(ascii: "Q"), UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF)] + body
    }

    final class Seen: @unchecked Sendable {
        var queries: [String] = []
    }

    @Test func auditedQueriesPassThrough() throws {
        let seen = Seen()
        let channel = EmbeddedChannel(handler: QueryTap { text, _, _ in
            seen.queries.append(text)
            return true
        })
        let bytes = Self.query("SELECT 1") + Self.query("SELECT 2")
        try channel.writeInbound(channel.allocator.buffer(bytes: bytes))
        #expect(seen.queries == ["SELECT 1", "SELECT 2"])
        let passed = try #require(try channel.readInbound(as: ByteBuffer.self))
        #expect(Array(passed.readableBytesView) == bytes)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        _ = try channel.finish()
    }

    @Test func aQueryThatCannotBeAuditedEndsTheSession() throws {
        let channel = EmbeddedChannel(handler: QueryTap { _, _, _ in false })
        try channel.writeInbound(channel.allocator.buffer(bytes: Self.query("DROP TABLE accounts")))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil, "the query never reaches the database")
        let reply = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(String(decoding: reply.readableBytesView, as: UTF8.self).contains("the audit log is unavailable"))
        #expect(!channel.isActive)
    }

    @Test func aMalformedStreamIsClosed() throws {
        let channel = EmbeddedChannel(handler: QueryTap { _, _, _ in true })
        try channel.writeInbound(channel.allocator.buffer(bytes: [UInt8(ascii: "Q"), 0, 0, 0, 1]))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        #expect(!channel.isActive)
    }
}

/// The same tap on a MySQL session: `COM_QUERY` and `COM_STMT_PREPARE` are audited before their
/// bytes go on; an unauditable statement and `COM_CHANGE_USER` end the session with an `ERR`.
@Suite("query tap (MySQL)")
struct MySQLQueryTapTests {
    static func command(_ byte: UInt8, _ text: String) -> [UInt8] {
        MySQLPacket(sequence: 0, payload: [byte] + Array(text.utf8)).bytes
    }

    @Test func statementsAreAuditedAndPassThrough() throws {
        let seen = QueryTapTests.Seen()
        let channel = EmbeddedChannel(handler: QueryTap(protocol: .mysql) { text, _, _ in
            seen.queries.append(text)
            return true
        })
        let bytes = Self.command(0x03, "SELECT 1") + Self.command(0x16, "SELECT ?") + Self.command(0x01, "")
        try channel.writeInbound(channel.allocator.buffer(bytes: bytes))
        #expect(seen.queries == ["SELECT 1", "SELECT ?"])
        let passed = try #require(try channel.readInbound(as: ByteBuffer.self))
        #expect(Array(passed.readableBytesView) == bytes)
        _ = try channel.finish()
    }

    @Test(arguments: [
        (command(0x03, "DROP TABLE accounts"), "the audit log is unavailable"),
        (command(0x11, "root\0"), "COM_CHANGE_USER is not allowed"),
    ])
    func refusedCommandsNeverReachTheDatabase(bytes: [UInt8], reason: String) throws {
        let channel = EmbeddedChannel(handler: QueryTap(protocol: .mysql) { _, _, _ in false })
        try channel.writeInbound(channel.allocator.buffer(bytes: bytes))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        let reply = try #require(try channel.readOutbound(as: ByteBuffer.self))
        let packet = Array(reply.readableBytesView)
        #expect(packet[3] == 1 && packet[4] == 0xFF, "an ERR packet answering the command")
        #expect(String(decoding: packet, as: UTF8.self).contains(reason))
        #expect(!channel.isActive)
    }
}
