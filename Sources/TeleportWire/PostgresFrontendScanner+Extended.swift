extension PostgresFrontendScanner {
    /// The extended query protocol's state on the client's side: prepared statements by name (from
    /// `Parse`) and portals by name (from `Bind`: a statement and its parameters), so that an
    /// `Execute` can be reported with the text and values it runs. What is kept is bounded by
    /// ``maxKeptBytes``: the oldest statements and portals are forgotten first (an `Execute` of a
    /// forgotten one is still reported, with a note instead of the text).
    struct ExtendedQueries: Sendable {
        /// The most bytes of statement text and parameters kept at once.
        static let maxKeptBytes = 1 << 20
        /// The most bytes of one parameter kept for the audit event.
        static let maxParameterBytes = 4096

        struct Statement: Sendable {
            var query: String
            /// The parameter type OIDs the client declared (0: unspecified).
            var types: [UInt32]
            var truncated: Bool
            var size: Int { query.utf8.count + types.count * 4 }
        }

        struct Portal: Sendable {
            var statement: String
            var parameters: [String?]
            var truncated: Bool
            var size: Int { statement.utf8.count + parameters.reduce(0) { $0 + ($1?.utf8.count ?? 0) } }
        }

        /// What an `Execute` runs.
        struct Execution: Sendable, Equatable {
            var query: String
            var parameters: [String?]
            var truncated: Bool
        }

        private var statements: [String: Statement] = [:]
        private var portals: [String: Portal] = [:]
        /// Names in the order they were last set: "S" + statement name, "P" + portal name.
        private var order: [String] = []
        private var keptBytes = 0

        /// `Parse`: statement name, query text, parameter type OIDs. A malformed body is ignored.
        mutating func parse(_ body: [UInt8], truncated: Bool) {
            var reader = Reader(body)
            guard let name = reader.cString() else { return }
            // A body cut at the limit may end inside the query: keep what there is.
            let query = reader.cString() ?? String(decoding: body[min(reader.offset, body.count)...].prefix { $0 != 0 }, as: UTF8.self)
            var types: [UInt32] = []
            if let count = reader.int16() {
                for _ in 0..<max(count, 0) {
                    guard let type = reader.int32() else { break }
                    types.append(UInt32(truncatingIfNeeded: type))
                }
            }
            store("S" + name, statement: Statement(query: query, types: types, truncated: truncated || reader.failed))
        }

        /// `Bind`: portal name, statement name, parameter formats, parameters, result formats.
        mutating func bind(_ body: [UInt8], truncated: Bool) {
            var reader = Reader(body)
            guard let portal = reader.cString(), let statement = reader.cString(), let formatCount = reader.int16() else { return }
            var formats: [Int] = []
            for _ in 0..<max(formatCount, 0) {
                guard let format = reader.int16() else { break }
                formats.append(format)
            }
            var parameters: [String?] = []
            var cut = truncated
            let types = statements[statement]?.types ?? []
            if let count = reader.int16() {
                for index in 0..<max(count, 0) {
                    guard let length = reader.int32() else {
                        cut = true
                        break
                    }
                    if length < 0 {
                        parameters.append(nil)
                        continue
                    }
                    let bytes = reader.bytes(length)
                    if bytes.count < length { cut = true }
                    let binary = (formats.count == 1 ? formats[0] : (index < formats.count ? formats[index] : 0)) == 1
                    parameters.append(Self.render(bytes, binary: binary, type: index < types.count ? types[index] : 0, cut: &cut))
                    if bytes.count < length { break }
                }
            } else {
                cut = true
            }
            store("P" + portal, portal: Portal(statement: statement, parameters: parameters, truncated: cut))
        }

        /// `Close`: `S` or `P`, then the name.
        mutating func close(_ body: [UInt8]) {
            var reader = Reader(body)
            guard let kind = reader.bytes(1).first, let name = reader.cString() else { return }
            forget((kind == UInt8(ascii: "S") ? "S" : "P") + name)
        }

        /// `Execute`: portal name, row limit. Nil when the body is malformed.
        mutating func execute(_ body: [UInt8]) -> Execution? {
            var reader = Reader(body)
            guard let name = reader.cString() else { return nil }
            guard let portal = portals[name] else {
                return Execution(query: "(portal \"\(name)\" was not bound or is no longer kept)", parameters: [], truncated: true)
            }
            guard let statement = statements[portal.statement] else {
                return Execution(
                    query: "(prepared statement \"\(portal.statement)\" is no longer kept)", parameters: portal.parameters, truncated: true)
            }
            return Execution(query: statement.query, parameters: portal.parameters, truncated: statement.truncated || portal.truncated)
        }

        /// A parameter as the audit shows it: text as UTF-8; binary values of common types (bool,
        /// integers, floats, text, uuid) as their text form, others as `\x` and hex; each cut at
        /// ``maxParameterBytes``.
        static func render(_ bytes: ArraySlice<UInt8>, binary: Bool, type: UInt32 = 0, cut: inout Bool) -> String {
            if binary {
                if let decoded = decodeBinary(bytes, type: type) { return decoded }
                let kept = bytes.prefix(maxParameterBytes / 2)
                if kept.count < bytes.count { cut = true }
                let digits = Array("0123456789abcdef".utf8)
                return "\\x" + String(decoding: kept.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0xF)]] }, as: UTF8.self)
            }
            let kept = bytes.prefix(maxParameterBytes)
            if kept.count < bytes.count { cut = true }
            return String(decoding: kept, as: UTF8.self)
        }

        /// The text form of a binary value of a well-known type (PostgreSQL's OIDs), or nil.
        static func decodeBinary(_ bytes: ArraySlice<UInt8>, type: UInt32) -> String? {
            func integer() -> Int64 {
                var value: UInt64 = 0
                for byte in bytes { value = value << 8 | UInt64(byte) }
                // Sign-extend from the value's width.
                let shift = UInt64(64 - 8 * bytes.count)
                return Int64(bitPattern: value << shift) >> Int64(shift)
            }
            switch (type, bytes.count) {
            case (16, 1): return bytes.first == 0 ? "f" : "t"
            case (21, 2), (23, 4), (20, 8): return String(integer())
            case (700, 4): return String(Float(bitPattern: UInt32(truncatingIfNeeded: integer())))
            case (701, 8): return String(Double(bitPattern: UInt64(bitPattern: integer())))
            case (25, _), (1043, _), (19, _):
                guard bytes.count <= maxParameterBytes else { return nil }
                return String(decoding: bytes, as: UTF8.self)
            case (2950, 16):
                let hex = bytes.map { String($0, radix: 16) }.map { $0.count == 1 ? "0" + $0 : $0 }
                return [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]].map { $0.joined() }.joined(separator: "-")
            default: return nil
            }
        }

        private mutating func store(_ key: String, statement: Statement? = nil, portal: Portal? = nil) {
            forget(key)
            let name = String(key.dropFirst())
            if let statement {
                statements[name] = statement
                keptBytes += statement.size
            }
            if let portal {
                portals[name] = portal
                keptBytes += portal.size
            }
            order.append(key)
            while keptBytes > Self.maxKeptBytes, order.count > 1 {
                forget(order[0])
            }
        }

        private mutating func forget(_ key: String) {
            let name = String(key.dropFirst())
            if key.first == "S", let old = statements.removeValue(forKey: name) { keptBytes -= old.size }
            if key.first == "P", let old = portals.removeValue(forKey: name) { keptBytes -= old.size }
            order.removeAll { $0 == key }
        }
    }

    /// Reads big-endian integers and NUL-terminated strings from a message body.
    struct Reader {
        let body: [UInt8]
        var offset = 0
        /// A read ran past the end.
        var failed = false

        init(_ body: [UInt8]) { self.body = body }

        mutating func cString() -> String? {
            guard offset <= body.count, let end = body[offset...].firstIndex(of: 0) else {
                failed = true
                return nil
            }
            defer { offset = end + 1 }
            return String(decoding: body[offset..<end], as: UTF8.self)
        }

        mutating func int16() -> Int? {
            guard offset + 2 <= body.count else {
                failed = true
                return nil
            }
            defer { offset += 2 }
            return Int(Int16(bitPattern: UInt16(body[offset]) << 8 | UInt16(body[offset + 1])))
        }

        mutating func int32() -> Int? {
            guard offset + 4 <= body.count else {
                failed = true
                return nil
            }
            defer { offset += 4 }
            return Int(Int32(bitPattern: PostgresStartup.readUInt32(body, at: offset)))
        }

        mutating func bytes(_ count: Int) -> ArraySlice<UInt8> {
            let end = min(body.count, offset + max(count, 0))
            defer { offset = end }
            return body[min(offset, end)..<end]
        }
    }
}
