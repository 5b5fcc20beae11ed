import Foundation
import TeleportAPI
import Testing

@testable import TeleportProxy

/// The web terminal's pure parts: the query, the control messages, the close codes and the Origin check.
@Suite("web terminal: request, controls, refusals")
struct WebTerminalRequestTests {
    static func parse(_ query: [String: String]) throws -> WebTerminalRequest {
        try WebTerminalRequest.parse { query[$0] }
    }

    @Test("a node and login open a shell; a session id joins; sizes default and are bounded")
    func requests() throws {
        #expect(try Self.parse(["node": "db1", "login": "root", "cols": "120", "rows": "40"]) == .connect(node: "db1", login: "root", columns: 120, rows: 40))
        #expect(try Self.parse(["node": "db1", "login": "root"]) == .connect(node: "db1", login: "root", columns: 80, rows: 24))
        let sid = "93613db1-071a-4778-9453-aae43a3002b1"
        #expect(try Self.parse(["session": sid]) == .join(sessionID: sid, mode: "observer", columns: 80, rows: 24))
        #expect(try Self.parse(["session": sid, "mode": "peer"]) == .join(sessionID: sid, mode: "peer", columns: 80, rows: 24))
    }

    @Test(
        "bad parameters are refused with a sentence",
        arguments: [
            [:], ["node": "db1"], ["login": "root"], ["node": "", "login": "root"], ["node": "db1", "login": "ro ot"],
            ["node": "db1", "login": "root", "cols": "0"], ["node": "db1", "login": "root", "rows": "100000"],
            ["node": "db1", "login": "root", "cols": "wide"], ["session": "../../etc/passwd"],
            ["session": "93613db1-071a-4778-9453-aae43a3002b1", "mode": "owner"],
        ])
    func refused(_ query: [String: String]) {
        #expect(throws: TeleportError.badParameter("")) { try Self.parse(query) }
    }

    @Test("resize controls parse; anything else is refused")
    func controls() throws {
        #expect(try WebTerminalControl.parse(#"{"type":"resize","cols":100,"rows":30}"#) == .resize(columns: 100, rows: 30))
        for text in [#"{"type":"resize","cols":0,"rows":30}"#, #"{"type":"exec","cols":1,"rows":1}"#, "resize", #"{"type":"resize"}"#,
                     String(repeating: " ", count: 2000) + "{}"] {
            #expect(throws: TeleportError.badParameter("")) { try WebTerminalControl.parse(text) }
        }
        #expect(WebTerminalControl.exitMessage(status: 3) == #"{"type":"exit","status":3}"#)
    }

    @Test("errors map to close codes; reasons fit a close frame")
    func closes() {
        #expect(WebTerminalClose(TeleportError.accessDenied("no")).code == 4403)
        #expect(WebTerminalClose(TeleportError.notFound("no")).code == 4404)
        #expect(WebTerminalClose(TeleportError.badParameter("no")).code == 4400)
        #expect(WebTerminalClose(TeleportError.connectionProblem("no")).code == 4502)
        let long = WebTerminalClose(code: 4403, reason: String(repeating: "é", count: 200) + "\nsecond line")
        #expect(long.reason.utf8.count <= 123 && !long.reason.contains("\n"))
    }

    @Test("only this proxy's own origin may open a terminal")
    func origin() {
        #expect(WebTerminalRoute.originRefusal(origin: "https://proxy.example:3080", host: "proxy.example:3080") == nil)
        #expect(WebTerminalRoute.originRefusal(origin: "HTTPS://Proxy.Example:3080", host: "proxy.example:3080") == nil)
        for origin in ["https://evil.example", "http://proxy.example:3080", "https://proxy.example:3081", "null", nil] {
            #expect(WebTerminalRoute.originRefusal(origin: origin, host: "proxy.example:3080") != nil, "\(origin ?? "none")")
        }
        #expect(WebTerminalRoute.originRefusal(origin: "https://proxy.example:3080", host: nil) != nil)
    }
}
