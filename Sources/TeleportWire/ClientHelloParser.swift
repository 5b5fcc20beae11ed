/// Reads the start of a TLS connection, the ClientHello, from the bytes a server received so far,
/// without I/O: the proxy's web port routes a connection by the ALPN protocols (and the server
/// name) the client offers before any TLS handler sees it.
///
/// The ClientHello may come split over several TLS records and several TCP reads: call
/// ``parse(_:)`` again with all the bytes received so far until it answers something other than
/// ``Result/needMoreData``. A ClientHello longer than ``maxSize`` is ``Result/malformed(_:)``.
public enum ClientHelloParser {
    /// What the bytes received so far are.
    public enum Result: Sendable, Equatable {
        /// A ClientHello has started but is not complete yet.
        case needMoreData
        /// The first byte is not a TLS handshake record (an SSH banner, a plain HTTP request...).
        case notTLS
        /// A TLS handshake record that is not a well-formed ClientHello; the reason names the flaw.
        case malformed(String)
        /// A complete ClientHello: the server name it asks for (SNI) and the ALPN protocols it
        /// offers, in the client's order.
        case hello(sni: String?, alpn: [String])
    }

    /// The longest ClientHello accepted (records included), 16 KiB: real ones are below 2 KiB.
    public static let maxSize = 16 * 1024

    static let handshakeRecord: UInt8 = 0x16
    static let clientHelloType: UInt8 = 0x01
    static let serverNameExtension: UInt16 = 0x0000
    static let alpnExtension: UInt16 = 0x0010

    /// Parses the bytes received so far.
    public static func parse<Bytes: Collection>(_ bytes: Bytes) -> Result where Bytes.Element == UInt8 {
        parse(Array(bytes))
    }

    /// Parses the bytes received so far.
    public static func parse(_ bytes: [UInt8]) -> Result {
        guard let first = bytes.first else { return .needMoreData }
        guard first == handshakeRecord else { return .notTLS }
        // Reassemble the handshake layer from as many complete records as there are.
        var handshake: [UInt8] = []
        var offset = 0
        while true {
            if offset >= bytes.count { break }
            if offset >= maxSize { return .malformed("the ClientHello is longer than \(maxSize) bytes") }
            guard bytes.count - offset >= 5 else {
                if bytes[offset] != handshakeRecord { return .malformed("a record of type \(bytes[offset]) inside the ClientHello") }
                if bytes.count - offset >= 2, bytes[offset + 1] != 3 {
                    return .malformed("record version \(bytes[offset + 1]).x is not TLS")
                }
                break
            }
            guard bytes[offset] == handshakeRecord else {
                return .malformed("a record of type \(bytes[offset]) inside the ClientHello")
            }
            guard bytes[offset + 1] == 3 else { return .malformed("record version \(bytes[offset + 1]).x is not TLS") }
            let length = Int(bytes[offset + 3]) << 8 | Int(bytes[offset + 4])
            guard length > 0 else { return .malformed("an empty handshake record") }
            guard length <= maxSize else { return .malformed("a record of \(length) bytes (more than \(maxSize))") }
            let start = offset + 5
            let available = min(length, bytes.count - start)
            handshake.append(contentsOf: bytes[start..<(start + available)])
            if available < length { break }
            offset = start + length
            if let outcome = assess(handshake) { return outcome }
        }
        if let outcome = assess(handshake) { return outcome }
        if bytes.count >= maxSize { return .malformed("the ClientHello is longer than \(maxSize) bytes") }
        return .needMoreData
    }

    /// The outcome once the handshake layer holds the whole ClientHello, or a flaw in its header;
    /// `nil` when more bytes are needed.
    static func assess(_ handshake: [UInt8]) -> Result? {
        guard let type = handshake.first else { return nil }
        guard type == clientHelloType else { return .malformed("the first handshake message is of type \(type), not a ClientHello") }
        guard handshake.count >= 4 else { return nil }
        let length = Int(handshake[1]) << 16 | Int(handshake[2]) << 8 | Int(handshake[3])
        guard length <= maxSize else { return .malformed("a ClientHello of \(length) bytes (more than \(maxSize))") }
        guard handshake.count >= 4 + length else { return nil }
        var reader = Reader(bytes: handshake[4..<(4 + length)])
        do {
            return try parseBody(&reader)
        } catch {
            return .malformed(error.reason)
        }
    }

    static func parseBody(_ reader: inout Reader) throws(Flaw) -> Result {
        let major = try reader.byte("client version")
        _ = try reader.byte("client version")
        guard major == 3 else { throw Flaw(reason: "client version \(major).x is not TLS") }
        _ = try reader.bytes(32, "random")
        let sessionID = try reader.byte("session id length")
        guard sessionID <= 32 else { throw Flaw(reason: "a session id of \(sessionID) bytes") }
        _ = try reader.bytes(Int(sessionID), "session id")
        let suites = try reader.uint16("cipher suites length")
        guard suites >= 2, suites % 2 == 0 else { throw Flaw(reason: "a cipher suite list of \(suites) bytes") }
        _ = try reader.bytes(Int(suites), "cipher suites")
        let compression = try reader.byte("compression methods length")
        guard compression >= 1 else { throw Flaw(reason: "no compression method") }
        _ = try reader.bytes(Int(compression), "compression methods")
        if reader.isEmpty { return .hello(sni: nil, alpn: []) }
        let extensionsLength = try reader.uint16("extensions length")
        var extensions = Reader(bytes: try reader.bytes(Int(extensionsLength), "extensions"))
        guard reader.isEmpty else { throw Flaw(reason: "\(reader.count) bytes after the extensions") }
        var sni: String?
        var alpn: [String] = []
        var seen: Set<UInt16> = []
        while !extensions.isEmpty {
            let type = try extensions.uint16("extension type")
            let length = try extensions.uint16("extension length")
            var body = Reader(bytes: try extensions.bytes(Int(length), "extension \(type)"))
            guard seen.insert(type).inserted else { throw Flaw(reason: "extension \(type) appears twice") }
            switch type {
            case serverNameExtension:
                sni = try parseServerName(&body)
            case alpnExtension:
                alpn = try parseALPN(&body)
            default:
                continue
            }
        }
        return .hello(sni: sni, alpn: alpn)
    }

    static func parseServerName(_ body: inout Reader) throws(Flaw) -> String? {
        // A server's ServerHello sends the extension empty; a ClientHello always has a list.
        let listLength = try body.uint16("server name list length")
        var list = Reader(bytes: try body.bytes(Int(listLength), "server name list"))
        guard body.isEmpty else { throw Flaw(reason: "bytes after the server name list") }
        var name: String?
        while !list.isEmpty {
            let nameType = try list.byte("server name type")
            let length = try list.uint16("server name length")
            let bytes = try list.bytes(Int(length), "server name")
            guard nameType == 0, name == nil else { continue }
            guard !bytes.isEmpty, bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                throw Flaw(reason: "the server name is not printable ASCII")
            }
            name = String(decoding: bytes, as: UTF8.self)
        }
        return name
    }

    static func parseALPN(_ body: inout Reader) throws(Flaw) -> [String] {
        let listLength = try body.uint16("ALPN list length")
        guard listLength >= 2 else { throw Flaw(reason: "an empty ALPN list") }
        var list = Reader(bytes: try body.bytes(Int(listLength), "ALPN list"))
        guard body.isEmpty else { throw Flaw(reason: "bytes after the ALPN list") }
        var protocols: [String] = []
        while !list.isEmpty {
            let length = try list.byte("ALPN protocol length")
            guard length > 0 else { throw Flaw(reason: "an empty ALPN protocol name") }
            let bytes = try list.bytes(Int(length), "ALPN protocol")
            // Names are opaque bytes; keep them as text (invalid UTF-8 becomes U+FFFD and matches no route).
            protocols.append(String(decoding: bytes, as: UTF8.self))
        }
        return protocols
    }

    /// Why a ClientHello is malformed.
    struct Flaw: Error {
        var reason: String
    }

    /// Reads big-endian fields off a slice.
    struct Reader {
        var bytes: ArraySlice<UInt8>

        var isEmpty: Bool { bytes.isEmpty }
        var count: Int { bytes.count }

        mutating func byte(_ field: String) throws(Flaw) -> UInt8 {
            guard let value = bytes.popFirst() else { throw Flaw(reason: "truncated at the \(field)") }
            return value
        }

        mutating func uint16(_ field: String) throws(Flaw) -> UInt16 {
            let high = try byte(field)
            let low = try byte(field)
            return UInt16(high) << 8 | UInt16(low)
        }

        mutating func bytes(_ count: Int, _ field: String) throws(Flaw) -> ArraySlice<UInt8> {
            guard bytes.count >= count else { throw Flaw(reason: "truncated in the \(field)") }
            let value = bytes.prefix(count)
            bytes.removeFirst(count)
            return value
        }
    }
}
