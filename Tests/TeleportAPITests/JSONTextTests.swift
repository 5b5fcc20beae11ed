import Foundation
import TeleportAPI
import Testing

@Suite("JSONText")
struct JSONTextTests {
    /// Every control character, quotes, backslashes, slashes, non-ASCII (two, three and four
    /// bytes), and keys whose order is not their insertion order.
    static let tricky: [String: JSONValue] = {
        var controls = ""
        for byte in 0..<0x20 { controls.unicodeScalars.append(Unicode.Scalar(UInt8(byte))) }
        return [
            "controls": .string(controls), "quote": "say \"hi\" \\ now", "slash": "/a/b?c=d&e", "unicode": "é € 𝄞 日本",
            "z": 1, "a": -9_223_372_036_854_775_807, "M": true, "m": false, "_": .null, "addr.remote": "127.0.0.1:5000",
            "nested": .object(["b": .array(["x", 1, .null, .object(["y": "z", "a": .array([])])]), "a": .object([:])]), "empty": "",
            "DEL\u{7F}": "\u{7F}", "list": .array([]),
        ]
    }()

    @Test func writesWhatJSONEncoderWrites() throws {
        var bytes: [UInt8] = []
        #expect(JSONText.write(Self.tricky, into: &bytes))
        let expected = try ResourceCodec.jsonEncoder().encode(Self.tricky)
        #expect(String(decoding: bytes, as: UTF8.self) == String(decoding: expected, as: UTF8.self))
    }

    @Test func aDoubleIsLeftToJSONEncoder() {
        var bytes: [UInt8] = Array("x".utf8)
        #expect(!JSONText.write(["a": "b", "ratio": .double(0.25)], into: &bytes))
        #expect(bytes == Array("x".utf8))
        #expect(!JSONText.write(["deep": .array([.object(["d": .double(1.5)])])], into: &bytes))
    }

    @Test func readsWhatJSONDecoderReads() throws {
        let text = try ResourceCodec.jsonEncoder().encode(Self.tricky)
        #expect(try JSONText.parse(text) == .object(Self.tricky))
        let samples = [
            #"{"s":"x","i":42,"neg":-7,"d":1.5,"t":true,"f":false,"n":null,"a":[1,"two",false,null],"o":{"k":"v","n":{"deep":[]}}}"#,
            #"  [ 1 , 2.5e3 , -0.125, 1E2, 3.0, "\u00e9\ud834\udd1e\/\n" , { } , [ ] ]  "#,
            #"{"big":9223372036854775807,"bigger":92233720368547758070,"small":-9223372036854775808}"#,
            #""esc \"\\\/\b\f\n\r\t \u0000 \u001f""#, "0", "-0", "true", "null",
        ]
        for sample in samples {
            let expected = try JSONDecoder().decode(JSONValue.self, from: Data(sample.utf8))
            #expect(try JSONText.parse(Data(sample.utf8)) == expected, "\(sample)")
        }
    }

    @Test(arguments: [
        "", " ", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "[1 2]", "01", "-", "1.", "1e", ".5", "+1", "tru", "nul",
        "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00x\"", "\"a\u{01}b\"", "[1] 2", "NaN", "1e999", "'a'",
    ])
    func refusesBadText(text: String) {
        #expect(throws: TeleportError.self) { try JSONText.parse(Data(text.utf8)) }
    }

    @Test func refusesInvalidUTF8AndDeepNesting() {
        #expect(throws: TeleportError.self) { try JSONText.parse([UInt8(ascii: "\""), 0xFF, 0xFE, UInt8(ascii: "\"")]) }
        #expect(throws: TeleportError.self) { try JSONText.parse(Array(repeating: UInt8(ascii: "["), count: 600) + Array(repeating: UInt8(ascii: "]"), count: 600)) }
        #expect(throws: Never.self) { try JSONText.parse(Array(repeating: UInt8(ascii: "["), count: 500) + Array(repeating: UInt8(ascii: "]"), count: 500)) }
    }

    @Test func auditLinesRoundTrip() throws {
        let event = AuditEvent(
            event: "app.session.request", code: "TAP02I", time: Date(timeIntervalSince1970: 1_700_000_000.25),
            fields: ["path": "/a/\"b\"", "status_code": 200, "duration_ms": 3, "sid": "x"])
        let line = try event.jsonLine()
        var expectedObject = event.fields
        expectedObject["event"] = .string(event.event)
        expectedObject["code"] = .string(event.code)
        expectedObject["uid"] = .string(event.uid)
        expectedObject["time"] = .string(RFC3339.format(event.time))
        #expect(line == (try ResourceCodec.jsonEncoder().encode(expectedObject)))
        #expect(try AuditEvent(jsonLine: line) == event)
        // With a double: JSONEncoder's text, read back the same.
        let withDouble = AuditEvent(event: "x.y", code: "T1I", time: event.time, fields: ["ratio": .double(0.5)])
        #expect(try AuditEvent(jsonLine: withDouble.jsonLine()) == withDouble)
    }
}
