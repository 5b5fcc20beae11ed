import Foundation
import TeleportAPI

/// The byte ranges of a JSON array's elements, found without parsing them: the proxy reads the
/// auth service's node list (the stored records, one after the other) and decodes only the
/// elements it has not seen before. Pure; strings (with their escapes) and nesting are followed so
/// that a `,` or `]` inside an element never splits it. Whether each element is valid JSON is left
/// to its decoder.
enum JSONArrayElements {
    /// The ranges of the elements of the array `data` holds (whitespace around it allowed).
    /// Throws `badParameter` when `data` is not one array with balanced brackets and strings.
    static func split(_ data: Data) throws -> [Range<Data.Index>] {
        try data.withUnsafeBytes { raw -> [Range<Int>] in
            try split(bytes: raw.bindMemory(to: UInt8.self))
        }.map { (data.startIndex + $0.lowerBound)..<(data.startIndex + $0.upperBound) }
    }

    /// ``split(_:)`` over raw bytes: the ranges are offsets from the first byte.
    static func split(bytes: UnsafeBufferPointer<UInt8>) throws -> [Range<Int>] {
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }
        func malformed(_ why: String) -> TeleportError { TeleportError.badParameter("the node list is not a JSON array: \(why)") }
        var index = 0
        let count = bytes.count
        while index < count, isSpace(bytes[index]) { index += 1 }
        guard index < count, bytes[index] == UInt8(ascii: "[") else { throw malformed("it does not start with [") }
        index += 1
        var ranges: [Range<Int>] = []
        var depth = 0
        var inString = false
        var start: Int?
        var closed = false
        while index < count {
            let byte = bytes[index]
            if inString {
                if byte == UInt8(ascii: "\\") {
                    index += 2
                    continue
                }
                if byte == UInt8(ascii: "\"") { inString = false }
                index += 1
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
                if start == nil { start = index }
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if start == nil { start = index }
            case UInt8(ascii: "}"):
                depth -= 1
                guard depth >= 0 else { throw malformed("an unbalanced }") }
            case UInt8(ascii: "]") where depth > 0:
                depth -= 1
            case UInt8(ascii: "]"), UInt8(ascii: ","):
                if depth == 0 {
                    if let first = start {
                        var end = index
                        while end > first, isSpace(bytes[end - 1]) { end -= 1 }
                        ranges.append(first..<end)
                    } else if byte == UInt8(ascii: ",") || !ranges.isEmpty {
                        throw malformed("an empty element")
                    }
                    start = nil
                    if byte == UInt8(ascii: "]") { closed = true }
                }
            default:
                if start == nil, !isSpace(byte) { start = index }
            }
            index += 1
            if closed { break }
        }
        guard closed, !inString else { throw malformed("it ends before its ]") }
        while index < count, isSpace(bytes[index]) { index += 1 }
        guard index == count else { throw malformed("there is more after its ]") }
        return ranges
    }
}
