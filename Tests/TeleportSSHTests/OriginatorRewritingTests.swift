import NIOCore
import NIOEmbedded
import NIOSSH
import Testing

@testable import TeleportSSH

/// The originator rewrite that lets `direct-tcpip` name any originator (swift-nio-ssh parses it as
/// an IP literal and drops the connection otherwise), the log line for when that parse still
/// fails, and the watch for certificate-only offers.
@Suite("Originator rewriting, direct-tcpip errors and certificate-only offers")
struct OriginatorRewritingTests {
    /// An `SSH_MSG_CHANNEL_OPEN` payload.
    static func channelOpen(type: String, host: String = "node", port: UInt32 = 3022, originator: String, originatorPort: UInt32 = 0, trailing: [UInt8] = []) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 128)
        buffer.writeInteger(UInt8(90))
        for text in [type] {
            buffer.writeInteger(UInt32(text.utf8.count))
            buffer.writeString(text)
        }
        buffer.writeInteger(UInt32(7))  // sender channel
        buffer.writeInteger(UInt32(2_097_152))  // initial window
        buffer.writeInteger(UInt32(32_768))  // maximum packet
        if type != "session" {
            buffer.writeInteger(UInt32(host.utf8.count))
            buffer.writeString(host)
            buffer.writeInteger(port)
            buffer.writeInteger(UInt32(originator.utf8.count))
            buffer.writeString(originator)
            buffer.writeInteger(originatorPort)
        }
        buffer.writeBytes(trailing)
        return buffer
    }

    @Test(arguments: ["", "localhost", "client.example", "127.0.0.1.evil", "::1::"])
    func nonIPOriginatorsBecomeUnspecified(originator: String) throws {
        for type in ["direct-tcpip", "forwarded-tcpip"] {
            let payload = Self.channelOpen(type: type, host: "testnode", port: 3022, originator: originator, originatorPort: 4242)
            let rewritten = try #require(OriginatorRewriting.rewrite(payload), "\(type) with \(originator.debugDescription)")
            #expect(rewritten == Self.channelOpen(type: type, host: "testnode", port: 3022, originator: "0.0.0.0", originatorPort: 4242))
        }
    }

    @Test(arguments: ["127.0.0.1", "10.1.2.3", "::1", "fe80::1", "0.0.0.0"])
    func ipOriginatorsPassUnchanged(originator: String) {
        #expect(OriginatorRewriting.rewrite(Self.channelOpen(type: "direct-tcpip", originator: originator)) == nil)
    }

    @Test func otherMessagesPassUnchanged() {
        #expect(OriginatorRewriting.rewrite(Self.channelOpen(type: "session", originator: "")) == nil)
        #expect(OriginatorRewriting.rewrite(Self.channelOpen(type: "x11", originator: "localhost")) == nil)
        var data = ByteBufferAllocator().buffer(capacity: 16)
        data.writeInteger(UInt8(94))  // SSH_MSG_CHANNEL_DATA
        data.writeInteger(UInt32(0))
        #expect(OriginatorRewriting.rewrite(data) == nil)
        #expect(OriginatorRewriting.rewrite(ByteBufferAllocator().buffer(capacity: 0)) == nil)
        // Truncated: the library reports those itself.
        let whole = Self.channelOpen(type: "direct-tcpip", originator: "localhost")
        #expect(OriginatorRewriting.rewrite(whole.getSlice(at: 0, length: whole.readableBytes - 2) ?? whole) == nil)
    }

    @Test func trailingBytesAreKept() throws {
        let rewritten = try #require(OriginatorRewriting.rewrite(Self.channelOpen(type: "direct-tcpip", originator: "", trailing: [1, 2, 3])))
        #expect(rewritten == Self.channelOpen(type: "direct-tcpip", originator: "0.0.0.0", trailing: [1, 2, 3]))
    }

    /// Servers wrap every bundled scheme; a library whose schemes differ gets them unwrapped.
    @Test func serversNegotiateTheWrappedSchemes() throws {
        let schemes = OriginatorRewriting.serverSchemes
        #expect(schemes.map { $0.cipherName } == ["aes256-gcm@openssh.com", "aes128-gcm@openssh.com"])
        #expect(schemes.allSatisfy { $0 is OriginatorRewritingProtection<OriginatorRewriting.AES256GCM>.Type || $0 is OriginatorRewritingProtection<OriginatorRewriting.AES128GCM>.Type })
        #expect(OriginatorRewritingProtection<OriginatorRewriting.AES256GCM>.keySizes.encryptionKeySize == 32)
        #expect(OriginatorRewritingProtection<OriginatorRewriting.AES128GCM>.keySizes.encryptionKeySize == 16)
        #expect(OriginatorRewritingProtection<OriginatorRewriting.AES128GCM>.macName == nil)
    }

    /// When the library's parse fails all the same, the log line names the client and the cause.
    @Test func nonIPOriginatorErrorIsExplained() throws {
        let explained = try #require(ConnectionErrorHandler.explain(SocketAddressError.failedToParseIPString("localhost"), remote: "192.0.2.7:5555"))
        #expect(explained.contains("SSH connection from 192.0.2.7:5555"))
        #expect(explained.contains("non-IP originator address in direct-tcpip (\"localhost\")"))
        #expect(ConnectionErrorHandler.explain(ChannelError.eof, remote: "192.0.2.7:5555") == nil)
        let address = try SocketAddress(ipAddress: "192.0.2.7", port: 5555)
        #expect(ConnectionErrorHandler.describe(address) == "192.0.2.7:5555")
        #expect(ConnectionErrorHandler.describe(try SocketAddress(ipAddress: "::1", port: 22)) == "[::1]:22")
        #expect(ConnectionErrorHandler.describe(nil) == "-")
    }

    /// An offer the library refuses without asking the delegate (a certificate) reads the methods
    /// without a request in the same turn; requests the delegate sees do not count.
    @Test func certificateOnlyOffersAreCounted() {
        let loop = EmbeddedEventLoop()
        let offers = UncheckableOffers(loop: loop)
        offers.methodsRead()
        offers.requestSeen()  // a signed plain-key offer: read, then the request
        loop.run()
        offers.requestSeen()
        offers.methodsRead()  // "none" and passwords: the request, then the read
        loop.run()
        #expect(offers.count == 0)
        #expect(offers.explanation(remote: "192.0.2.7:5555") == nil)
        offers.methodsRead()  // a certificate: a read with no request
        loop.run()
        #expect(offers.count == 1)
        let explained = offers.explanation(remote: "192.0.2.7:5555") ?? ""
        #expect(explained.contains("SSH client at 192.0.2.7:5555") && explained.contains("a certificate was offered; offer its plain key too"), "\(explained)")
    }
}
