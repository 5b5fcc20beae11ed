import TeleportWire
import Testing

@Suite("ClientHelloParser")
struct ClientHelloParserTests {
    @Test func opensslWithServerNameAndALPN() {
        #expect(
            ClientHelloParser.parse(CapturedHellos.opensslAlpnSni)
                == .hello(sni: "proxy.example.com", alpn: ["teleport-auth", "http/1.1"]))
    }

    @Test func opensslWithoutServerNameOrALPN() {
        #expect(ClientHelloParser.parse(CapturedHellos.opensslPlain) == .hello(sni: nil, alpn: []))
    }

    @Test func opensslWithAnUnknownALPNValue() {
        #expect(ClientHelloParser.parse(CapturedHellos.opensslGarbageAlpn) == .hello(sni: nil, alpn: ["xyz"]))
    }

    @Test func curl() {
        #expect(ClientHelloParser.parse(CapturedHellos.curl) == .hello(sni: "localhost", alpn: ["h2", "http/1.1"]))
    }

    /// Every proper prefix of a real ClientHello asks for more bytes: TCP may deliver it in any pieces.
    @Test(arguments: [CapturedHellos.opensslAlpnSni, CapturedHellos.opensslPlain, CapturedHellos.curl])
    func everyTruncationNeedsMoreData(hello: [UInt8]) {
        for length in 0..<hello.count {
            #expect(ClientHelloParser.parse(hello.prefix(length)) == .needMoreData, "prefix of \(length) bytes")
        }
    }

    /// The same handshake message split over several TLS records (allowed by RFC 8446 5.1).
    @Test(arguments: [1, 7, 50, 200])
    func helloSplitOverRecords(fragment: Int) {
        let hello = CapturedHellos.opensslAlpnSni
        let handshake = Array(hello[5...])
        var records: [UInt8] = []
        var index = 0
        while index < handshake.count {
            let piece = handshake[index..<min(index + fragment, handshake.count)]
            records += [0x16, 0x03, 0x01, UInt8(piece.count >> 8), UInt8(piece.count & 0xff)] + piece
            index += fragment
        }
        #expect(ClientHelloParser.parse(records) == .hello(sni: "proxy.example.com", alpn: ["teleport-auth", "http/1.1"]))
        #expect(ClientHelloParser.parse(records.dropLast()) == .needMoreData)
    }

    /// Bytes after the ClientHello (a client sending early data) do not matter.
    @Test func trailingBytesAreIgnored() {
        #expect(ClientHelloParser.parse(CapturedHellos.curl + [0x17, 0x03, 0x03]) == .hello(sni: "localhost", alpn: ["h2", "http/1.1"]))
    }

    @Test(arguments: ["SSH-2.0-OpenSSH_9.2p1\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "\r\n", "hello"])
    func plaintextIsNotTLS(text: String) {
        #expect(ClientHelloParser.parse(Array(text.utf8)) == .notTLS)
    }

    /// An alert record where the rest of the ClientHello should be.
    @Test func aRecordOfAnotherTypeIsMalformed() {
        let firstPiece: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x02, 0x01, 0x00]
        let alert: [UInt8] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]
        #expect(ClientHelloParser.parse(firstPiece) == .needMoreData)
        #expect(ClientHelloParser.parse(firstPiece + alert) == .malformed("a record of type 21 inside the ClientHello"))
    }

    @Test func aServerHelloIsMalformed() {
        var hello = CapturedHellos.opensslPlain
        hello[5] = 0x02
        #expect(ClientHelloParser.parse(hello) == .malformed("the first handshake message is of type 2, not a ClientHello"))
    }

    @Test func anSSLv2OrOtherRecordVersionIsMalformed() {
        var hello = CapturedHellos.opensslPlain
        hello[1] = 0x02
        #expect(ClientHelloParser.parse(hello) == .malformed("record version 2.x is not TLS"))
    }

    @Test func anEmptyRecordIsMalformed() {
        #expect(ClientHelloParser.parse([0x16, 0x03, 0x01, 0x00, 0x00]) == .malformed("an empty handshake record"))
    }

    /// A declared length above the bound is refused at once, before the bytes arrive.
    @Test func anOversizedHelloIsRefusedEarly() {
        #expect(
            ClientHelloParser.parse([0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x01, 0x00, 0x00])
                == .malformed("a ClientHello of 65536 bytes (more than 16384)"))
    }

    /// Many tiny records never complete the ClientHello: the total is bounded too.
    @Test func tooManyRecordsAreRefused() {
        var bytes: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x3f, 0xff]
        while bytes.count <= ClientHelloParser.maxSize + 10 { bytes += [0x16, 0x03, 0x01, 0x00, 0x01, 0x00] }
        guard case .malformed = ClientHelloParser.parse(bytes) else {
            Issue.record("16 KiB of records were not refused")
            return
        }
    }

    /// A length field inside the ClientHello that overruns it.
    @Test func anOverrunningExtensionIsMalformed() {
        var hello = CapturedHellos.opensslPlain
        // The extensions length is the 2 bytes after compression: overrun it by one.
        let body = 9  // record (5) + handshake header (4)
        var index = body + 2 + 32
        index += 1 + Int(hello[index])
        let suites = Int(hello[index]) << 8 | Int(hello[index + 1])
        index += 2 + suites
        index += 1 + Int(hello[index])
        let length = Int(hello[index]) << 8 | Int(hello[index + 1])
        hello[index] = UInt8((length + 1) >> 8)
        hello[index + 1] = UInt8((length + 1) & 0xff)
        guard case .malformed(let reason) = ClientHelloParser.parse(hello) else {
            Issue.record("an overrunning extensions length was accepted")
            return
        }
        #expect(reason.contains("extensions"))
    }

    @Test func garbageAfterAHandshakeByteIsMalformedOrNeedsMore() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let length = Int.random(in: 1...600, using: &generator)
            let bytes = [UInt8(0x16)] + (1..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Must not trap; random bytes are never taken for a ClientHello with a valid record header.
            _ = ClientHelloParser.parse(bytes)
        }
    }
}

@Suite("PlaintextProbe")
struct PlaintextProbeTests {
    @Test(arguments: [
        ("GET / HTTP/1.1\r\n", PlaintextProbe.Kind.http), ("POST /webapi HTTP/1.1", .http), ("HEAD / HTTP/1.0", .http),
        ("SSH-2.0-OpenSSH_9.2p1\r\n", .ssh), ("SSH-", .ssh), ("GE", .needMoreData), ("SS", .needMoreData),
        ("", .needMoreData), ("\r\n", .unknown), ("hello world", .unknown), ("GETX", .unknown),
    ])
    func classify(text: String, kind: PlaintextProbe.Kind) {
        #expect(PlaintextProbe.classify(Array(text.utf8)) == kind)
    }
}
