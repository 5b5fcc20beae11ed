import Foundation
import TeleportAPI
import Testing

@Suite("RFC3339")
struct RFC3339Tests {
    @Test(arguments: [
        (1_486_104_845.0, "2017-02-03T06:54:05Z"),
        (0.0, "1970-01-01T00:00:00Z"),
        (1_800_000_000.0, "2027-01-15T08:00:00Z"),
    ])
    func wholeSecondsHaveNoFraction(seconds: Double, text: String) {
        let formatted = RFC3339.format(Date(timeIntervalSince1970: seconds))
        #expect(formatted == text)
        #expect(formatted.hasSuffix("Z"))
        #expect(!formatted.contains("."))
        #expect(RFC3339.parse(formatted) == Date(timeIntervalSince1970: seconds))
    }

    @Test(arguments: [(1_486_104_845.5, "2017-02-03T06:54:05.500Z"), (1_486_104_845.125, "2017-02-03T06:54:05.125Z")])
    func fractionsAreMilliseconds(seconds: Double, text: String) throws {
        let formatted = RFC3339.format(Date(timeIntervalSince1970: seconds))
        #expect(formatted == text)
        let parsed = try #require(RFC3339.parse(formatted))
        #expect(abs(parsed.timeIntervalSince1970 - seconds) < 0.001)
    }

    @Test(arguments: [1_486_104_845.001, 1_700_000_000.25, 1_234_567_890.999])
    func fractionalRoundTrip(seconds: Double) throws {
        let date = Date(timeIntervalSince1970: seconds)
        let parsed = try #require(RFC3339.parse(RFC3339.format(date)))
        #expect(abs(parsed.timeIntervalSince(date)) < 0.001)
    }

    @Test(arguments: [
        ("2017-02-03T06:54:05Z", 1_486_104_845.0),
        ("2017-02-03T06:54:05.250Z", 1_486_104_845.25),
        ("2017-02-03T08:54:05+02:00", 1_486_104_845.0),
    ])
    func parses(text: String, seconds: Double) throws {
        let parsed = try #require(RFC3339.parse(text))
        #expect(abs(parsed.timeIntervalSince1970 - seconds) < 0.0005)
    }

    @Test(arguments: ["", "yesterday", "2017-02-03", "2017-02-03 06:54:05", "2017-13-03T06:54:05Z"])
    func refuses(text: String) {
        #expect(RFC3339.parse(text) == nil)
    }
}
