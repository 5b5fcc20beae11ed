/// The parameters of a MySQL `COM_STMT_EXECUTE` (the binary protocol), decoded to text for the
/// audit log without I/O: the null bitmap, the new-params-bound flag, the types (2 bytes each:
/// the type and a flags byte whose 0x80 bit means unsigned) and the values. Integers, floats and
/// doubles become their decimal text, dates, datetimes, timestamps and times MySQL's text
/// form (`2024-02-29 13:05:09.000123`), strings and decimals their text (bytes that are not
/// UTF-8 as `\x` hex), each cut at ``maxValueBytes``; SQL NULL is nil. A value of an unknown
/// type, or a body cut short, ends the decoding: that value and the rest are nil and the
/// result is marked incomplete.
public struct MySQLBinaryParameters: Sendable, Equatable {
    /// How much of one value is kept.
    public static let maxValueBytes = 4096

    /// The values in order (nil: SQL NULL, or not decoded when ``complete`` is false).
    public var values: [String?]
    /// The types the values were read with (the execute's own, or the statement's last bound).
    public var types: [UInt16]
    /// False when a value could not be read (unknown type, body cut short, no types known).
    public var complete: Bool

    /// Creates a result.
    public init(values: [String?], types: [UInt16], complete: Bool) {
        self.values = values
        self.types = types
        self.complete = complete
    }

    /// MySQL column types (`MYSQL_TYPE_*`) the decoder knows.
    public enum FieldType {
        public static let decimal: UInt8 = 0x00
        public static let tiny: UInt8 = 0x01
        public static let short: UInt8 = 0x02
        public static let long: UInt8 = 0x03
        public static let float: UInt8 = 0x04
        public static let double: UInt8 = 0x05
        public static let null: UInt8 = 0x06
        public static let timestamp: UInt8 = 0x07
        public static let longlong: UInt8 = 0x08
        public static let int24: UInt8 = 0x09
        public static let date: UInt8 = 0x0A
        public static let time: UInt8 = 0x0B
        public static let datetime: UInt8 = 0x0C
        public static let year: UInt8 = 0x0D
        public static let varchar: UInt8 = 0x0F
        public static let bit: UInt8 = 0x10
    }

    /// Decodes the body of a `COM_STMT_EXECUTE` (the bytes after the command byte: statement
    /// id, flags, iteration count, then the parameters) of a statement with `count` parameters;
    /// `previousTypes` are the types last bound for it (used when the flag says none are sent).
    public static func decode(body: [UInt8], count: Int, previousTypes: [UInt16]?) -> MySQLBinaryParameters {
        guard count > 0 else { return MySQLBinaryParameters(values: [], types: [], complete: true) }
        var reader = MySQLReader(body)
        var values = [String?](repeating: nil, count: count)
        guard reader.skip(9), let bitmap = reader.take((count + 7) / 8), let bound = reader.integer(1) else {
            return MySQLBinaryParameters(values: values, types: previousTypes ?? [], complete: false)
        }
        var types: [UInt16]
        if bound == 1 {
            types = []
            for _ in 0..<count {
                guard let type = reader.integer(2) else { return MySQLBinaryParameters(values: values, types: [], complete: false) }
                types.append(UInt16(type))
            }
        } else if let previousTypes, previousTypes.count == count {
            types = previousTypes
        } else {
            return MySQLBinaryParameters(values: values, types: [], complete: false)
        }
        for index in 0..<count {
            if bitmap[index / 8] & (1 << (index % 8)) != 0 { continue }
            guard let value = readValue(&reader, type: types[index]) else {
                return MySQLBinaryParameters(values: values, types: types, complete: false)
            }
            values[index] = value
        }
        return MySQLBinaryParameters(values: values, types: types, complete: true)
    }

    /// One value of `type` (low byte: the field type; 0x8000: unsigned): `.some(nil)` for a
    /// NULL-typed value, nil when it cannot be read (unknown type, cut short).
    static func readValue(_ reader: inout MySQLReader, type: UInt16) -> String?? {
        let unsigned = type & 0x8000 != 0
        func integer(_ width: Int) -> String? {
            guard let raw = reader.integer(width) else { return nil }
            if unsigned { return String(raw) }
            let shift = UInt64(64 - 8 * width)
            return String(Int64(bitPattern: raw << shift) >> Int64(shift))
        }
        switch UInt8(type & 0xFF) {
        case FieldType.null:
            return .some(nil)
        case FieldType.tiny:
            return integer(1).map { .some($0) }
        case FieldType.short, FieldType.year:
            return integer(2).map { .some($0) }
        case FieldType.long, FieldType.int24:
            return integer(4).map { .some($0) }
        case FieldType.longlong:
            return integer(8).map { .some($0) }
        case FieldType.float:
            return reader.integer(4).map { .some("\(Float(bitPattern: UInt32($0)))") }
        case FieldType.double:
            return reader.integer(8).map { .some("\(Double(bitPattern: $0))") }
        case FieldType.date, FieldType.datetime, FieldType.timestamp:
            return readDate(&reader, dateOnly: UInt8(type & 0xFF) == FieldType.date).map { .some($0) }
        case FieldType.time:
            return readTime(&reader).map { .some($0) }
        case FieldType.decimal, FieldType.varchar, FieldType.bit, 0xF5...0xFF:
            return reader.lengthEncodedBytes().map { .some(text($0)) }
        default:
            return nil
        }
    }

    /// `YYYY-MM-DD[ HH:MM:SS[.ffffff]]` from the binary form (a length byte: 0, 4, 7 or 11).
    static func readDate(_ reader: inout MySQLReader, dateOnly: Bool) -> String? {
        guard let length = reader.integer(1), [0, 4, 7, 11].contains(length), let bytes = reader.take(Int(length)) else { return nil }
        var field = MySQLReader(bytes)
        let year = field.integer(2) ?? 0
        let month = field.integer(1) ?? 0
        let day = field.integer(1) ?? 0
        var text = "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
        if dateOnly { return text }
        let hour = field.integer(1) ?? 0
        let minute = field.integer(1) ?? 0
        let second = field.integer(1) ?? 0
        text += " \(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2))"
        if let micro = field.integer(4) { text += ".\(pad(micro, 6))" }
        return text
    }

    /// `[-]HHH:MM:SS[.ffffff]` from the binary form (a length byte: 0, 8 or 12; days count as 24 hours).
    static func readTime(_ reader: inout MySQLReader) -> String? {
        guard let length = reader.integer(1), [0, 8, 12].contains(length), let bytes = reader.take(Int(length)) else { return nil }
        var field = MySQLReader(bytes)
        let negative = (field.integer(1) ?? 0) == 1
        let days = field.integer(4) ?? 0
        let hours = days * 24 + (field.integer(1) ?? 0)
        let minute = field.integer(1) ?? 0
        let second = field.integer(1) ?? 0
        var text = "\(negative ? "-" : "")\(pad(hours, 2)):\(pad(minute, 2)):\(pad(second, 2))"
        if let micro = field.integer(4) { text += ".\(pad(micro, 6))" }
        return text
    }

    static func pad(_ value: UInt64, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// A string value: its UTF-8 text, else `\x` hex; cut at ``maxValueBytes``.
    static func text(_ bytes: [UInt8]) -> String {
        if String(validating: bytes, as: UTF8.self) != nil { return String(decoding: bytes.prefix(maxValueBytes), as: UTF8.self) }
        let digits = Array("0123456789abcdef".utf8)
        return "\\x" + String(decoding: bytes.prefix(maxValueBytes / 2).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0xF)]] }, as: UTF8.self)
    }
}
