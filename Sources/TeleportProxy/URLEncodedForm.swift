import TeleportAPI

/// A decoded `application/x-www-form-urlencoded` body: `+` is a space, `%XX` an escaped byte, the
/// result must be UTF-8. The first value of a repeated field wins.
struct URLEncodedForm: Sendable, Equatable {
    /// Field values by name.
    private(set) var fields: [String: String]

    /// Decodes `bytes`; throws `badParameter` on a malformed escape or invalid UTF-8.
    init(decoding bytes: some Collection<UInt8>) throws {
        fields = [:]
        for pair in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let name = try Self.unescape(parts[0])
            let value = parts.count > 1 ? try Self.unescape(parts[1]) : ""
            if fields[name] == nil { fields[name] = value }
        }
    }

    /// The value of field `name`, if sent.
    subscript(_ name: String) -> String? { fields[name] }

    /// Undoes `+` and `%XX`.
    static func unescape(_ bytes: some Collection<UInt8>) throws -> String {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"):
                output.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    throw TeleportError.badParameter("the form holds a malformed %-escape")
                }
                output.append(high << 4 | low)
            default:
                output.append(byte)
            }
        }
        guard let text = String(validating: output, as: UTF8.self) else {
            throw TeleportError.badParameter("the form is not valid UTF-8")
        }
        return text
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
