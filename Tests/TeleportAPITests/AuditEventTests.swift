import Foundation
import TeleportAPI
import Testing

@Suite("AuditEvent")
struct AuditEventTests {
    /// The event of the seed's audit log example (`session.start`).
    static func seedEvent() -> AuditEvent {
        AuditEvent(
            event: "session.start", code: "T2000I", time: Date(timeIntervalSince1970: 1_486_104_845),
            uid: "59cf8d1b-7b36-4894-8e90-9d9713b6b9ef",
            fields: [
                "user": "ekontsevoy", "login": "root", "namespace": "default",
                "server_id": "f84f7386-5e22-45ff-8f7d-b8079742e63f",
                "server_labels": .object(["datacenter": "us-east-1", "label-b": "x"]),
                "sid": "8d3895b6-e9dd-11e6-94de-40167e68e931", "addr.local": "10.5.l.15:3022",
                "addr.remote": "73.223.221.14:42146", "size": "80:25",
            ])
    }

    @Test func jsonLineRoundTrip() throws {
        let event = Self.seedEvent()
        let line = try event.jsonLine()
        #expect(!line.contains(UInt8(ascii: "\n")), "one line")
        let decoded = try AuditEvent(jsonLine: line)
        #expect(decoded == event)
        #expect(decoded.fields["addr.remote"] == "73.223.221.14:42146")
        #expect(decoded.fields["server_labels"] == .object(["datacenter": "us-east-1", "label-b": "x"]))
    }

    @Test func jsonLineIsFlatWithTheCommonFields() throws {
        let line = try Self.seedEvent().jsonLine()
        let object = try #require(try JSONSerialization.jsonObject(with: line) as? [String: Any])
        #expect(object["event"] as? String == "session.start")
        #expect(object["code"] as? String == "T2000I")
        #expect(object["uid"] as? String == "59cf8d1b-7b36-4894-8e90-9d9713b6b9ef")
        #expect(object["time"] as? String == "2017-02-03T06:54:05Z")
        #expect(object["addr.remote"] as? String == "73.223.221.14:42146")
        #expect((object["server_labels"] as? [String: Any])?["datacenter"] as? String == "us-east-1")
        #expect(object["fields"] == nil)
        let text = String(decoding: line, as: UTF8.self)
        #expect(text.hasPrefix(#"{"addr.local":"#), "keys sorted: \(text)")
    }

    @Test func readsTheSeedsLine() throws {
        let line = #"{"event":"session.start","uid":"59cf8d1b-7b36-4894-8e90-9d9713b6b9ef","user":"ekontsevoy","login":"root","namespace":"default","server_id":"f84f7386-5e22-45ff-8f7d-b8079742e63f","server_labels":{"datacenter":"us-east-1","label-b":"x"},"sid":"8d3895b6-e9dd-11e6-94de-40167e68e931","addr.local":"10.5.l.15:3022","addr.remote":"73.223.221.14:42146","size":"80:25","time":"2017-02-03T06:54:05Z","code":"T2000I"}"#
        let event = try AuditEvent(jsonLine: Data(line.utf8))
        #expect(event == Self.seedEvent())
    }

    @Test func objectReadsAsTheLineDoes() throws {
        let line = try Self.seedEvent().jsonLine()
        let object = try JSONDecoder().decode([String: JSONValue].self, from: line)
        #expect(try AuditEvent(object: object) == AuditEvent(jsonLine: line))
        var missing = object
        missing["uid"] = nil
        #expect(throws: TeleportError.self) { try AuditEvent(object: missing) }
    }

    @Test func fractionalTimesSurvive() throws {
        var event = Self.seedEvent()
        event.time = Date(timeIntervalSince1970: 1_486_104_845.25)
        let decoded = try AuditEvent(jsonLine: event.jsonLine())
        #expect(decoded.time == event.time)
    }

    @Test func commonFieldsWinOverFields() throws {
        var event = Self.seedEvent()
        event.fields["event"] = "forged"
        let decoded = try AuditEvent(jsonLine: event.jsonLine())
        #expect(decoded.event == "session.start")
        #expect(decoded.fields["event"] == nil)
    }

    @Test(arguments: [
        #"{"code":"T2000I","uid":"u","time":"2017-02-03T06:54:05Z"}"#,
        #"{"event":"x","uid":"u","time":"2017-02-03T06:54:05Z"}"#,
        #"{"event":"x","code":"T2000I","time":"2017-02-03T06:54:05Z"}"#,
        #"{"event":"x","code":"T2000I","uid":"u"}"#,
        #"{"event":"x","code":"T2000I","uid":"u","time":"yesterday"}"#,
        #"{"event":1,"code":"T2000I","uid":"u","time":"2017-02-03T06:54:05Z"}"#,
    ])
    func incompleteEventsAreRefused(line: String) {
        let error = #expect(throws: TeleportError.self) { try AuditEvent(jsonLine: Data(line.utf8)) }
        #expect(error?.code == .badParameter)
    }

    @Test func notJSONIsRefused() {
        #expect(throws: (any Error).self) { try AuditEvent(jsonLine: Data("not json".utf8)) }
    }
}
