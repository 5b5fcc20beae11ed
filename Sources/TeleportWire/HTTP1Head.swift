/// One HTTP/1.1 message head (a request or a response), parsed without I/O from the bytes up to
/// and including the blank line, and the framing of the body that follows it. Strict where
/// smuggling lives: CRLF line ends only, no obs-fold, header names of token characters, one
/// `Content-Length` value, `Transfer-Encoding` only as exactly `chunked` and never with
/// `Content-Length`. Used by the Kubernetes service, which relays messages byte for byte and
/// must know where each ends.
public struct HTTP1Head: Sendable, Equatable {
    /// One header line.
    public struct Header: Sendable, Equatable {
        /// The name as sent.
        public var name: String
        /// The value without surrounding spaces.
        public var value: String

        /// Creates a header.
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    /// How the body after a head is delimited.
    public enum Framing: Sendable, Equatable {
        /// No body.
        case none
        /// Exactly this many bytes.
        case length(Int)
        /// `Transfer-Encoding: chunked` (see ``HTTP1ChunkedScanner``).
        case chunked
        /// Until the connection closes (responses only).
        case untilClose
    }

    /// The three parts of the first line: method, target, version (requests) or version,
    /// status, reason (responses).
    public var first: String
    public var second: String
    public var third: String
    /// The headers, in order.
    public var headers: [Header]

    /// Creates a head.
    public init(first: String, second: String, third: String, headers: [Header]) {
        self.first = first
        self.second = second
        self.third = third
        self.headers = headers
    }

    /// The most a head may take.
    public static let defaultLimit = 64 * 1024

    /// The first value of header `name` (case-insensitive).
    public func value(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name.lowercased() == lower }?.value
    }

    /// Every value of header `name` (case-insensitive), lists split at commas.
    public func values(_ name: String) -> [String] {
        let lower = name.lowercased()
        return headers.filter { $0.name.lowercased() == lower }.flatMap { $0.value.split(separator: ",") }
            .map { $0.trimmingCharacters(in: " \t") }.filter { !$0.isEmpty }
    }

    /// Whether the `Connection` header lists `token`.
    public func connectionHas(_ token: String) -> Bool {
        values("connection").contains { $0.lowercased() == token.lowercased() }
    }

    /// The head as bytes (the first line, each header, the blank line).
    public var bytes: [UInt8] {
        var text = "\(first) \(second) \(third)\r\n"
        for header in headers { text += "\(header.name): \(header.value)\r\n" }
        text += "\r\n"
        return Array(text.utf8)
    }

    /// The length of the head at the start of `bytes` (through the blank line); nil while it is
    /// incomplete.
    ///
    /// - Throws: ``HTTP1Error`` when `limit` bytes hold no complete head.
    public static func length<Bytes: Collection>(_ bytes: Bytes, limit: Int = defaultLimit) throws -> Int? where Bytes.Element == UInt8 {
        var matched = 0
        var count = 0
        for byte in bytes {
            count += 1
            switch (matched, byte) {
            case (0, 13), (2, 13): matched += 1
            case (1, 10), (3, 10): matched += 1
            case (_, 13): matched = 1
            default: matched = 0
            }
            if matched == 4 { return count }
            if count >= limit { throw HTTP1Error("the message head is larger than \(limit) bytes") }
        }
        return nil
    }

    /// Parses a request head (`bytes` exactly as ``length(_:limit:)`` measured it).
    public static func request(_ bytes: [UInt8]) throws -> HTTP1Head {
        let head = try parse(bytes)
        guard head.third == "HTTP/1.1" || head.third == "HTTP/1.0" else {
            throw HTTP1Error("the request line's version is not HTTP/1.1")
        }
        guard !head.first.isEmpty, head.first.utf8.allSatisfy(isTokenByte) else { throw HTTP1Error("the request method is not a token") }
        guard head.second.hasPrefix("/"), head.second.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw HTTP1Error("the request target must be a path (origin form)")
        }
        return head
    }

    /// Parses a response head.
    public static func response(_ bytes: [UInt8]) throws -> HTTP1Head {
        let head = try parse(bytes)
        guard head.first.hasPrefix("HTTP/1."), head.second.count == 3, let status = Int(head.second), (100...599).contains(status) else {
            throw HTTP1Error("the status line is not HTTP/1.x with a three-digit status")
        }
        return head
    }

    /// The response status (0 for a request head).
    public var status: Int { Int(second) ?? 0 }

    /// How a request's body is delimited.
    public func requestFraming() throws -> Framing {
        let framing = try bodyFraming()
        return framing == .untilClose ? .none : framing
    }

    /// How a response's body is delimited, given the request's method.
    public func responseFraming(requestMethod: String) throws -> Framing {
        let status = self.status
        if requestMethod == "HEAD" || (100..<200).contains(status) || status == 204 || status == 304 { return .none }
        return try bodyFraming()
    }

    func bodyFraming() throws -> Framing {
        let encodings = values("transfer-encoding")
        let lengths = headers.filter { $0.name.lowercased() == "content-length" }.map(\.value)
        if !encodings.isEmpty {
            guard lengths.isEmpty else { throw HTTP1Error("a message with both Content-Length and Transfer-Encoding is refused") }
            guard encodings.count == 1, encodings[0].lowercased() == "chunked" else {
                throw HTTP1Error("Transfer-Encoding other than exactly chunked is refused")
            }
            return .chunked
        }
        guard let first = lengths.first else { return .untilClose }
        guard lengths.allSatisfy({ $0 == first }), !first.isEmpty, first.count <= 18, first.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let length = Int(first)
        else { throw HTTP1Error("the Content-Length is not one decimal number") }
        return length == 0 ? .none : .length(length)
    }

    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        default: return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }

    static func parse(_ bytes: [UInt8]) throws -> HTTP1Head {
        guard bytes.count >= 4, bytes.suffix(4) == [13, 10, 13, 10] else { throw HTTP1Error("the head does not end with a blank line") }
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        var index = 0
        let end = bytes.count - 2
        while index < end {
            if bytes[index] == 10 { throw HTTP1Error("a line ends with a bare LF") }
            if bytes[index] == 13 {
                guard bytes[index + 1] == 10 else { throw HTTP1Error("a line holds a bare CR") }
                lines.append(bytes[start..<index])
                index += 2
                start = index
                continue
            }
            if bytes[index] == 0 { throw HTTP1Error("the head holds a NUL byte") }
            index += 1
        }
        guard let firstLine = lines.first else { throw HTTP1Error("the head is empty") }
        let parts = firstLine.split(separator: UInt8(ascii: " "), maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw HTTP1Error("the first line is malformed") }
        var headers: [Header] = []
        for line in lines.dropFirst() {
            guard let first = line.first, first != UInt8(ascii: " "), first != UInt8(ascii: "\t") else {
                throw HTTP1Error("folded header lines (obs-fold) are refused")
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { throw HTTP1Error("a header line has no colon") }
            let name = line[line.startIndex..<colon]
            guard !name.isEmpty, name.allSatisfy(isTokenByte) else { throw HTTP1Error("a header name is not a token") }
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingCharacters(in: " \t")
            headers.append(Header(String(decoding: name, as: UTF8.self), value))
            guard headers.count <= 256 else { throw HTTP1Error("the head has more than 256 headers") }
        }
        return HTTP1Head(
            first: String(decoding: parts[0], as: UTF8.self), second: String(decoding: parts[1], as: UTF8.self),
            third: parts.count > 2 ? String(decoding: parts[2], as: UTF8.self) : "", headers: headers)
    }
}

/// A refused HTTP/1.1 message, with a line that says why.
public struct HTTP1Error: Error, Sendable, Equatable, CustomStringConvertible {
    /// Why.
    public var reason: String

    /// Creates the error.
    public init(_ reason: String) { self.reason = reason }

    public var description: String { reason }
}

extension String {
    /// The string without leading and trailing characters of `set` (Foundation-free).
    func trimmingCharacters(in set: String) -> String {
        let characters = Set(set)
        var slice = Substring(self)
        while let first = slice.first, characters.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, characters.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String { String(self).trimmingCharacters(in: set) }
}

/// Finds the end of a chunked body in a byte stream, without buffering it: feed it the bytes as
/// they arrive; it says how many belong to the body and when the body (with its trailers) is
/// complete. Chunk-size lines and trailer lines are bounded (4 KiB each, 64 KiB of trailers).
public struct HTTP1ChunkedScanner: Sendable {
    enum State: Sendable, Equatable {
        case size(line: [UInt8])
        case data(remaining: Int)
        case dataEnd(seenCR: Bool)
        case trailer(line: Int, seenCR: Bool, total: Int)
        case done
    }

    var state: State = .size(line: [])

    /// Creates a scanner at the start of a body.
    public init() {}

    /// Whether the body ended.
    public var isDone: Bool { state == .done }

    /// Consumes bytes from the start of `bytes`; returns how many belong to the body (fewer than
    /// `bytes.count` only when the body ended inside them).
    ///
    /// - Throws: ``HTTP1Error`` for a malformed chunk size or line end.
    public mutating func consume<Bytes: Collection>(_ bytes: Bytes) throws -> Int where Bytes.Element == UInt8 {
        var consumed = 0
        var iterator = bytes.makeIterator()
        while state != .done {
            if case .data(let remaining) = state {
                // Skip the data in one step.
                let available = bytes.count - consumed
                let take = min(remaining, available)
                if take == 0 { break }
                for _ in 0..<take { _ = iterator.next() }
                consumed += take
                state = remaining - take == 0 ? .dataEnd(seenCR: false) : .data(remaining: remaining - take)
                continue
            }
            guard let byte = iterator.next() else { break }
            consumed += 1
            switch state {
            case .size(var line):
                if byte == 10 {
                    guard line.last == 13 else { throw HTTP1Error("a chunk size line ends with a bare LF") }
                    line.removeLast()
                    let digits = line.prefix { $0 != UInt8(ascii: ";") }
                    let text = String(decoding: digits, as: UTF8.self).trimmingCharacters(in: " \t")
                    guard !text.isEmpty, text.count <= 15, let size = Int(text, radix: 16), size >= 0 else {
                        throw HTTP1Error("a chunk size is not a hexadecimal number")
                    }
                    state = size == 0 ? .trailer(line: 0, seenCR: false, total: 0) : .data(remaining: size)
                } else {
                    line.append(byte)
                    guard line.count <= 4096 else { throw HTTP1Error("a chunk size line is longer than 4 KiB") }
                    state = .size(line: line)
                }
            case .dataEnd(let seenCR):
                if !seenCR {
                    guard byte == 13 else { throw HTTP1Error("a chunk's data is not followed by CRLF") }
                    state = .dataEnd(seenCR: true)
                } else {
                    guard byte == 10 else { throw HTTP1Error("a chunk's data is not followed by CRLF") }
                    state = .size(line: [])
                }
            case .trailer(let line, let seenCR, let total):
                guard total < 64 * 1024 else { throw HTTP1Error("the trailers are longer than 64 KiB") }
                if byte == 10 {
                    guard seenCR else { throw HTTP1Error("a trailer line ends with a bare LF") }
                    state = line == 0 ? .done : .trailer(line: 0, seenCR: false, total: total + 1)
                } else if byte == 13 {
                    state = .trailer(line: line, seenCR: true, total: total + 1)
                } else {
                    state = .trailer(line: line + 1, seenCR: false, total: total + 1)
                }
            case .data, .done: break
            }
        }
        return consumed
    }
}

extension HTTP1ChunkedScanner {
    /// Like ``consume(_:)``, and hands each run of chunk data (the body without its chunk framing)
    /// to `payload`, in order. Returns how many bytes of `bytes` belong to the body.
    public mutating func decode(_ bytes: ArraySlice<UInt8>, payload: (ArraySlice<UInt8>) throws -> Void) throws -> Int {
        var index = bytes.startIndex
        while index < bytes.endIndex, state != .done {
            if case .data(let remaining) = state {
                let take = min(remaining, bytes.endIndex - index)
                try payload(bytes[index..<(index + take)])
                index += take
                state = remaining - take == 0 ? .dataEnd(seenCR: false) : .data(remaining: remaining - take)
                continue
            }
            index += try consume(bytes[index..<(index + 1)])
        }
        return index - bytes.startIndex
    }
}
