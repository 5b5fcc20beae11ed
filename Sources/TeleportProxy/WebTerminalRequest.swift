import Foundation
import TeleportAPI
import TeleportEvents

/// What `GET /webapi/terminal` asks for, parsed and checked before anything is dialled:
/// `?node=NODE&login=LOGIN&cols=C&rows=R` opens a shell, `?session=SID&mode=observer|peer`
/// joins a live one (the way `tsh join` does). Pure, for tests.
enum WebTerminalRequest: Equatable, Sendable {
    /// A new shell on `node` as `login`, with a terminal of `columns`×`rows`.
    case connect(node: String, login: String, columns: Int, rows: Int)
    /// Joins the live session `sessionID` as `mode` (`observer` or `peer`).
    case join(sessionID: String, mode: String, columns: Int, rows: Int)

    /// The terminal size the browser starts with when it sends none, and the bounds of any size.
    static let defaultSize = (columns: 80, rows: 24)
    static let sizeRange = 1...1000

    /// Parses the query's parameters (`get` reads one by name).
    static func parse(_ get: (String) -> String?) throws -> WebTerminalRequest {
        let columns = try size(get("cols"), name: "cols", fallback: defaultSize.columns)
        let rows = try size(get("rows"), name: "rows", fallback: defaultSize.rows)
        if let session = get("session") {
            guard SessionRecording.validSessionID(session) else {
                throw TeleportError.badParameter("session=\(session.prefix(64)) is not a session id: /web/sessions lists the live ones")
            }
            let mode = get("mode") ?? "observer"
            guard mode == "observer" || mode == "peer" else { throw TeleportError.badParameter("mode=\(mode.prefix(32)): expected observer or peer") }
            return .join(sessionID: session, mode: mode, columns: columns, rows: rows)
        }
        guard let node = get("node"), !node.isEmpty, node.count <= 255 else {
            throw TeleportError.badParameter("the terminal needs node=NODE and login=LOGIN (or session=SID to join one)")
        }
        guard let login = get("login"), !login.isEmpty, login.count <= 64, !login.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw TeleportError.badParameter("the terminal needs login=LOGIN, one of the logins the nodes table offers")
        }
        return .connect(node: node, login: login, columns: columns, rows: rows)
    }

    static func size(_ text: String?, name: String, fallback: Int) throws -> Int {
        guard let text else { return fallback }
        guard let value = Int(text), sizeRange.contains(value) else {
            throw TeleportError.badParameter("\(name)=\(text.prefix(16)) must be a number from 1 to 1000")
        }
        return value
    }
}

/// A browser's message on the terminal WebSocket: binary frames are keystrokes; text frames are
/// small JSON controls (only `{"type":"resize","cols":C,"rows":R}` today). Pure, for tests.
enum WebTerminalControl: Equatable, Sendable {
    case resize(columns: Int, rows: Int)

    /// The largest control message read.
    static let maxBytes = 1024

    struct Wire: Decodable {
        var type: String
        var cols: Int?
        var rows: Int?
    }

    /// Parses a text frame; `badParameter` for anything else.
    static func parse(_ text: String) throws -> WebTerminalControl {
        guard text.utf8.count <= maxBytes, let wire = try? JSONDecoder().decode(Wire.self, from: Data(text.utf8)) else {
            throw TeleportError.badParameter("a text message must be a JSON control such as {\"type\":\"resize\",\"cols\":80,\"rows\":24}")
        }
        switch wire.type {
        case "resize":
            guard let cols = wire.cols, let rows = wire.rows, WebTerminalRequest.sizeRange.contains(cols), WebTerminalRequest.sizeRange.contains(rows)
            else { throw TeleportError.badParameter("resize needs cols and rows from 1 to 1000") }
            return .resize(columns: cols, rows: rows)
        default:
            throw TeleportError.badParameter("unknown control message type \(wire.type.prefix(32).debugDescription)")
        }
    }

    /// The message the proxy sends when the shell ends.
    static func exitMessage(status: Int32?) -> String {
        if let status { return "{\"type\":\"exit\",\"status\":\(status)}" }
        return "{\"type\":\"exit\",\"status\":null}"
    }
}

/// How the terminal WebSocket refuses or ends: a close code and a one-line reason (at most 123
/// bytes, the WebSocket limit), for the page to show.
struct WebTerminalClose: Equatable, Sendable, Error {
    var code: UInt16
    var reason: String

    static let badRequest: UInt16 = 4400
    static let unauthenticated: UInt16 = 4401
    static let forbidden: UInt16 = 4403
    static let notFound: UInt16 = 4404
    static let unreachable: UInt16 = 4502

    init(code: UInt16, reason: String) {
        self.code = code
        self.reason = Self.truncated(reason)
    }

    /// The close for an error on the way to the node: refused → 4403, unknown → 4404, bad input
    /// → 4400, not reachable (or anything else) → 4502.
    init(_ error: TeleportError) {
        let code: UInt16
        switch error.code {
        case .accessDenied: code = Self.forbidden
        case .notFound: code = Self.notFound
        case .badParameter: code = Self.badRequest
        default: code = Self.unreachable
        }
        self.init(code: code, reason: error.message)
    }

    /// `text` cut (at a character boundary) to fit a close frame's 123-byte reason.
    static func truncated(_ text: String) -> String {
        let line = text.replacingOccurrences(of: "\n", with: " ")
        guard line.utf8.count > 123 else { return line }
        var out = ""
        for character in line {
            if out.utf8.count + String(character).utf8.count > 120 { break }
            out.append(character)
        }
        return out + "..."
    }
}
