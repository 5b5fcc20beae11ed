import Foundation
import TeleportAPI
import Testing

@Suite("JSONValue")
struct JSONValueTests {
    @Test func decodesMixedValues() throws {
        let json = #"{"s":"x","i":42,"neg":-7,"d":1.5,"t":true,"f":false,"n":null,"a":[1,"two",false,null],"o":{"k":"v","n":{"deep":[]}}}"#
        let value = try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8))
        let expected: JSONValue = .object([
            "s": "x", "i": 42, "neg": -7, "d": .double(1.5), "t": true, "f": false, "n": .null,
            "a": .array([1, "two", false, .null]),
            "o": .object(["k": "v", "n": .object(["deep": .array([])])]),
        ])
        #expect(value == expected)
    }

    @Test(arguments: [
        ("\"1\"", JSONValue.string("1")), ("1", .int(1)), ("true", .bool(true)), ("0", .int(0)),
        ("2.25", .double(2.25)), ("null", .null), ("[]", .array([])), ("{}", .object([:])),
    ])
    func scalarsKeepTheirType(json: String, expected: JSONValue) throws {
        #expect(try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8)) == expected)
    }

    @Test func encodeDecodeRoundTrip() throws {
        let value: JSONValue = .object([
            "server_labels": .object(["datacenter": "us-east-1"]), "exitCode": 0, "ok": true, "ratio": .double(0.25),
            "list": .array(["a", 1, .null]), "none": .null,
        ])
        let data = try JSONEncoder().encode(value)
        #expect(try JSONDecoder().decode(JSONValue.self, from: data) == value)
    }

    @Test func stringValue() {
        #expect(JSONValue.string("x").stringValue == "x")
        #expect(JSONValue.int(1).stringValue == nil)
        #expect(JSONValue.null.stringValue == nil)
    }
}
