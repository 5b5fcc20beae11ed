public import Foundation

/// RFC 3339 timestamps in UTC, as the audit log and resources write them.
public enum RFC3339 {
    /// `2017-02-03T06:54:05Z` (with `.SSS` when the time has a fraction of a second).
    public static func format(_ date: Date) -> String {
        let whole = date.timeIntervalSince1970.rounded(.down) == date.timeIntervalSince1970
        let utc = TimeZone(identifier: "UTC") ?? .current
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: !whole, timeZone: utc)
        return date.formatted(style)
    }

    /// Parses RFC 3339 with or without fractional seconds.
    public static func parse(_ text: String) -> Date? {
        let plain = Date.ISO8601FormatStyle()
        if let date = try? plain.parse(text) { return date }
        let fractional = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        return try? fractional.parse(text)
    }
}
