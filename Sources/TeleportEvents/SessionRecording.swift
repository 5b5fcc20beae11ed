import CTeleportShims
public import Foundation
public import TeleportAPI

/// A recorded terminal session: a header line, then one JSON line per frame (output bytes or a
/// resize, with milliseconds since the start), then an end line. The node appends lines as the
/// session runs, so a crash leaves a readable prefix; the auth service stores it gzip-compressed.
public enum SessionRecording {
    /// Who, where and when.
    public struct Header: Codable, Sendable, Equatable {
        public var sid: String
        public var user: String
        public var login: String
        public var serverID: String
        public var serverHostname: String
        public var start: Date
        /// `COLUMNS:ROWS` at the start.
        public var size: String

        enum CodingKeys: String, CodingKey {
            case sid, user, login, start, size
            case serverID = "server_id"
            case serverHostname = "server_hostname"
        }

        public init(sid: String, user: String, login: String, serverID: String, serverHostname: String, start: Date, size: String) {
            self.sid = sid
            self.user = user
            self.login = login
            self.serverID = serverID
            self.serverHostname = serverHostname
            self.start = start
            self.size = size
        }
    }

    /// One line after the header.
    public struct Frame: Codable, Sendable, Equatable {
        /// Milliseconds since the start.
        public var ms: Int
        /// Output bytes (base64 in JSON).
        public var output: Data?
        /// A new terminal size, `COLUMNS:ROWS`.
        public var resize: String?
        /// True on the last line of a session that ended normally.
        public var end: Bool?

        enum CodingKeys: String, CodingKey {
            case ms, resize, end
            case output = "o"
        }

        public init(ms: Int, output: Data? = nil, resize: String? = nil, end: Bool? = nil) {
            self.ms = ms
            self.output = output
            self.resize = resize
            self.end = end
        }
    }

    /// A parsed recording.
    public struct Parsed: Sendable, Equatable {
        public var header: Header
        public var frames: [Frame]
        /// False when the session's end is missing (the node stopped mid-session).
        public var complete: Bool
        /// Every output byte, in order (what the user's terminal received).
        public var output: Data { frames.reduce(into: Data()) { $0.append($1.output ?? Data()) } }
        /// From the start to the last frame.
        public var durationMs: Int { frames.last?.ms ?? 0 }
    }

    /// A session id is a canonical, lower-case UUID; nothing else is ever used in a path.
    public static func validSessionID(_ text: String) -> Bool {
        text.count == 36 && UUID(uuidString: text) != nil && text == text.lowercased()
            && text.allSatisfy { $0.isHexDigit || $0 == "-" }
    }

    /// One JSON line (with its newline).
    public static func line<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(RFC3339.format(date))
        }
        encoder.dataEncodingStrategy = .base64
        return try encoder.encode(value) + Data([0x0A])
    }

    /// The line of an output frame: byte for byte what ``line(_:)`` gives for
    /// `Frame(ms: ms, output: output)` (sorted keys, base64 with `/` escaped as JSONEncoder does),
    /// without a JSONEncoder: a session's output, each keystroke's echo included, is recorded on
    /// its event loop before it is sent on.
    public static func outputLine(ms: Int, output: UnsafeRawBufferPointer) -> Data {
        let encoded = Data(output).base64EncodedData()
        var line: [UInt8] = []
        line.reserveCapacity(encoded.count + encoded.count / 16 + 32)
        line.append(contentsOf: #"{"ms":"#.utf8)
        line.append(contentsOf: String(ms).utf8)
        line.append(contentsOf: #","o":""#.utf8)
        for byte in encoded {
            if byte == UInt8(ascii: "/") { line.append(UInt8(ascii: "\\")) }
            line.append(byte)
        }
        line.append(contentsOf: "\"}\n".utf8)
        return Data(line)
    }

    /// Reads a recording; a torn last line (a crash while writing) is ignored.
    public static func parse(_ data: Data) throws -> Parsed {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = RFC3339.parse(text) else { throw TeleportError.badParameter("\(text) is not a time") }
            return date
        }
        decoder.dataDecodingStrategy = .base64
        var lines = data.split(separator: 0x0A, omittingEmptySubsequences: true)
        if data.last != 0x0A, !lines.isEmpty { lines.removeLast() }
        guard let first = lines.first, let header = try? decoder.decode(Header.self, from: Data(first)), validSessionID(header.sid)
        else {
            throw TeleportError.badParameter("the recording has no valid header line")
        }
        var frames: [Frame] = []
        var complete = false
        for line in lines.dropFirst() {
            guard let frame = try? decoder.decode(Frame.self, from: Data(line)) else {
                throw TeleportError.badParameter("the recording has a corrupt line after \(frames.count) frames")
            }
            if frame.end == true { complete = true }
            frames.append(frame)
        }
        return Parsed(header: header, frames: frames, complete: complete)
    }

    /// gzip.
    public static func compress(_ data: Data) throws -> Data {
        var output: UnsafeMutablePointer<UInt8>?
        var length = 0
        let result = data.withUnsafeBytes { raw in
            teleport_gzip(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, &output, &length)
        }
        guard result == 0, let output else { throw TeleportError.internalError("gzip failed") }
        defer { free(output) }
        return Data(bytes: output, count: length)
    }

    /// gunzip, refusing more than `limit` bytes of output.
    public static func decompress(_ data: Data, limit: Int = 512 << 20) throws -> Data {
        var output: UnsafeMutablePointer<UInt8>?
        var length = 0
        let result = data.withUnsafeBytes { raw in
            teleport_gunzip(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, limit, &output, &length)
        }
        switch result {
        case 0:
            guard let output else { return Data() }
            defer { free(output) }
            return Data(bytes: output, count: length)
        case -2: throw TeleportError.limitExceeded("the recording is larger than \(limit) bytes")
        default: throw TeleportError.badParameter("the recording is not whole gzip data (truncated or corrupt)")
        }
    }
}
