import TeleportAPI
import Testing

@Suite("GoDuration")
struct GoDurationTests {
    @Test(arguments: [
        ("1m0s", 60.0), ("1h0m0s", 3600.0), ("30h", 108_000.0), ("90s", 90.0), ("500ms", 0.5), ("1h30m", 5400.0),
        ("5m", 300.0), ("0", 0.0), ("0s", 0.0), ("1.5h", 5400.0), ("2h45m30s", 9930.0), ("250us", 0.00025),
        ("250µs", 0.00025), ("10ns", 1e-8), (" 1m ", 60.0),
    ])
    func parses(text: String, seconds: Double) throws {
        let parsed = try #require(GoDuration.parse(text))
        #expect(abs(parsed - seconds) < 1e-12)
    }

    @Test(arguments: ["10", "1x", "", " ", "m", "1m5", "-1m", "1 m", "1d", "h1", "1.2.3s", "1mm"])
    func refuses(text: String) {
        #expect(GoDuration.parse(text) == nil)
    }

    @Test(arguments: [
        (60.0, "1m0s"), (3600.0, "1h0m0s"), (108_000.0, "30h0m0s"), (90.0, "1m30s"), (5400.0, "1h30m0s"),
        (30.0, "30s"), (0.0, "0s"), (3661.0, "1h1m1s"), (59.6, "1m0s"),
    ])
    func formats(seconds: Double, text: String) {
        #expect(GoDuration.format(seconds: seconds) == text)
    }

    @Test(arguments: [1.0, 59.0, 60.0, 61.0, 3599.0, 3600.0, 86_400.0, 108_000.0, 123_456.0])
    func formatThenParseRoundTrips(seconds: Double) {
        #expect(GoDuration.parse(GoDuration.format(seconds: seconds)) == seconds)
    }
}
