import Foundation

/// A mapping value: a literal, or `^regex$` (anchored, the whole value must match).
public struct ClaimMatcher: Sendable, Equatable {
    /// The text as configured.
    public let pattern: String

    /// Compiles `pattern`; `field` names the setting in the error.
    ///
    /// - Throws: `badParameter` when a `^...$` pattern does not compile.
    public init(_ pattern: String, field: String) throws {
        self.pattern = pattern
        if Self.isRegex(pattern) {
            do {
                _ = try NSRegularExpression(pattern: pattern)
            } catch {
                throw TeleportError.badParameter("\(field): \"\(pattern)\" is not a valid regular expression")
            }
        }
    }

    static func isRegex(_ text: String) -> Bool { text.count >= 2 && text.hasPrefix("^") && text.hasSuffix("$") }

    /// Whether `value` matches (literally, or the whole value against the regex).
    public func matches(_ value: String) -> Bool {
        guard Self.isRegex(pattern) else { return pattern == value }
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return false }
        let range = NSRange(value.startIndex..<value.endIndex, in: value)
        guard let match = regex.firstMatch(in: value, range: range) else { return false }
        return match.range == range
    }
}
