import Foundation
import TeleportAPI
@testable import TeleportAuthServer
import Testing

/// The auth service encodes an event to measure it only when `sizeBound` could pass the limit:
/// the bound must never be below the real length of the line the log writes.
@Suite("audit event size bound")
struct AuditSizeBoundTests {
    @Test func theBoundIsNeverBelowTheLine() throws {
        var controls = ""
        for byte in 0..<0x20 { controls.unicodeScalars.append(Unicode.Scalar(UInt8(byte))) }
        let samples: [[String: JSONValue]] = [
            [:],
            ["user": "alice", "status_code": 200, "duration_ms": 3, "path": "/small.txt"],
            ["c": .string(String(repeating: controls, count: 50)), "q": .string(String(repeating: "\"\\", count: 500))],
            ["nested": .object(["a": .array([.string(controls), 1, .null, true, .double(0.1)]), controls: .string("é€𝄞")])],
            ["big": .int(Int.min), "ratio": .double(-1.0e-300)],
        ]
        for fields in samples {
            var event = AuditEvent(event: "app.session.request", code: "TAP02I", time: Date(), fields: fields)
            event.fields["prev_hash"] = .string(String(repeating: "a", count: 64))
            let line = try event.jsonLine()
            // The sealed line adds ,"hash":"<64 hex>".
            #expect(AuthServer.sizeBound(event) >= line.count + 75, "\(fields)")
        }
    }
}
