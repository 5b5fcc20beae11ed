import Foundation
import Hummingbird
import Logging
import TeleportAPI
import TeleportAuthClient
import TeleportEvents

/// The web UI's recordings list, player and audit log:
///
/// - `GET /web/recordings`: the recordings the user may read (`GET /webapi/recordings`: time
///   range, user and node filters, newest first, a page at a time);
/// - `GET /web/recordings/SID`: the player (`GET /webapi/recordings/SID`: the recording's frames,
///   exactly what `tsh play` replays);
/// - `GET /web/audit`: the audit log (`GET /webapi/audit/events`: time range, event type, user,
///   session; what `tctl events ls` reads).
///
/// Every data call goes to the auth service as the session's user
/// (``AuthClient/actingFor(webSession:)``): it decides who reads which recording (participants,
/// roles allowing `read` on `session`; a refusal is audited as `session.recording.access`) and
/// who reads events (roles allowing `list` on `event`). JSON replies have `<`, `>`, `&` escaped.
struct WebRecordingsRoutes: Sendable {
    let auth: AuthClient
    let clusterName: String
    let logger: Logger

    /// The largest page of recordings or events.
    static let maxPage = 500

    var gate: WebSessionGate<AuthClient> { WebSessionGate(auth: auth, logger: logger) }

    /// Adds the routes to `router`.
    func register(on router: Router<ProxyRequestContext>) {
        router.get("web/recordings") { request, context in
            await gate.page(request, context: context) { WebReplayPages.recordings($0, clusterName: clusterName) }
        }
        router.get("web/recordings/:sid") { request, context in
            let sid = context.parameters.get("sid") ?? ""
            guard SessionRecording.validSessionID(sid) else {
                return WebResponse.jsonError(TeleportError.badParameter("this is not a session id (a lower-case UUID)"))
            }
            return await gate.page(request, context: context) { WebReplayPages.player($0, clusterName: clusterName, sid: sid) }
        }
        router.get("web/audit") { request, context in
            await gate.page(request, context: context) { WebReplayPages.audit($0, clusterName: clusterName) }
        }
        router.get("web/js/recordings.js") { _, _ in WebUIPages.asset(WebReplayPages.recordingsJS, type: "text/javascript; charset=utf-8") }
        router.get("web/js/player.js") { _, _ in WebUIPages.asset(WebReplayPages.playerJS, type: "text/javascript; charset=utf-8") }
        router.get("web/js/audit.js") { _, _ in WebUIPages.asset(WebReplayPages.auditJS, type: "text/javascript; charset=utf-8") }
        router.get("web/css/replay.css") { _, _ in WebUIPages.asset(WebReplayPages.css, type: "text/css; charset=utf-8") }
        router.get("webapi/recordings") { request, context in await recordings(request, context: context) }
        router.get("webapi/recordings/:sid") { request, context in await recording(request, context: context) }
        router.get("webapi/audit/events") { request, context in await events(request, context: context) }
    }

    /// Runs `body` with the auth client acting for the request's web session; errors as sentences.
    func asUser(
        _ request: Request, context: ProxyRequestContext, _ body: (AuthClient) async throws -> Data
    ) async -> Response {
        switch await gate.session(request, context: context, stateChanging: false) {
        case .failure(let failure): return failure.response
        case .success(let found):
            do {
                return WebResponse.json(NodesRoute.htmlSafe(try await body(auth.actingFor(webSession: found.id))))
            } catch let error as TeleportError where error.code != .internalError && error.code != .connectionProblem {
                return WebResponse.jsonError(error)
            } catch {
                return gate.unavailable(error)
            }
        }
    }

    static func time(_ text: String?, name: String) throws -> Date? {
        guard let text, !text.isEmpty else { return nil }
        if let date = RFC3339.parse(text) ?? RFC3339.parse(text + "T00:00:00Z") ?? RFC3339.parse(text + ":00Z") { return date }
        throw TeleportError.badParameter("\(name) \(text.prefix(40).debugDescription) is not a date or an RFC 3339 time")
    }

    static func limit(_ text: String?) -> Int { min(max(Int(text ?? "") ?? 50, 1), maxPage) }

    /// `GET /webapi/recordings?from=&to=&user=&node=&start=&limit=`.
    func recordings(_ request: Request, context: ProxyRequestContext) async -> Response {
        await asUser(request, context: context) { client in
            let query = request.uri.queryParameters
            let from = try Self.time(query.get("from").map { String($0) }, name: "from")
            // A bare date as the end means the whole of that day.
            let toText = query.get("to").map { String($0) }
            var to = try Self.time(toText, name: "to")
            if let end = to, let toText, toText.count == 10 { to = end.addingTimeInterval(86_400) }
            let user = (query.get("user").map { String($0) } ?? "").lowercased()
            let node = (query.get("node").map { String($0) } ?? "").lowercased()
            let all = try await client.recordings(forUser: nil, roles: []).filter { info in
                (from.map { info.start >= $0 } ?? true) && (to.map { info.start < $0 } ?? true)
                    && (user.isEmpty || info.user.lowercased().contains(user))
                    && (node.isEmpty || info.serverHostname.lowercased().contains(node) || info.serverID.lowercased().contains(node))
            }
            let start = min(max(Int(query.get("start").map { String($0) } ?? "") ?? 0, 0), all.count)
            let end = min(start + Self.limit(query.get("limit").map { String($0) }), all.count)
            return try ResourceCodec.json(
                WebRecordingPage(items: Array(all[start..<end]), total: all.count, nextStart: end < all.count ? end : nil))
        }
    }

    /// `GET /webapi/recordings/SID`: the header and frames (output base64) of one recording.
    func recording(_ request: Request, context: ProxyRequestContext) async -> Response {
        await asUser(request, context: context) { client in
            let sid = context.parameters.get("sid") ?? ""
            guard SessionRecording.validSessionID(sid) else { throw TeleportError.badParameter("this is not a session id (a lower-case UUID)") }
            let parsed = try SessionRecording.parse(try await client.recording(sessionID: sid, forUser: nil, roles: []))
            return try ResourceCodec.json(
                WebRecording(header: parsed.header, frames: parsed.frames, durationMs: parsed.durationMs, complete: parsed.complete))
        }
    }

    /// `GET /webapi/audit/events?from=&to=&type=&user=&sid=&start=&limit=`: oldest first.
    func events(_ request: Request, context: ProxyRequestContext) async -> Response {
        await asUser(request, context: context) { client in
            let query = request.uri.queryParameters
            let now = Date()
            let from = try Self.time(query.get("from").map { String($0) }, name: "from") ?? now.addingTimeInterval(-86_400)
            let toText = query.get("to").map { String($0) }
            var to = try Self.time(toText, name: "to") ?? now.addingTimeInterval(60)
            if let toText, toText.count == 10 { to = to.addingTimeInterval(86_400) }
            let types = (query.get("type").map { String($0) } ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
            func text(_ name: String) -> String? {
                guard let value = query.get(name).map { String($0) }?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
                return value
            }
            let page = try await client.searchEvents(
                from: from, to: to, types: types, limit: Self.limit(query.get("limit").map { String($0) }), startKey: text("start"),
                user: text("user"), sessionID: text("sid"))
            return try ResourceCodec.json(page)
        }
    }
}

/// One page of `GET /webapi/recordings`.
struct WebRecordingPage: Encodable {
    var items: [AuthAPI.RecordingInfo]
    var total: Int
    var nextStart: Int?

    enum CodingKeys: String, CodingKey {
        case items, total
        case nextStart = "next_start"
    }
}

/// A recording as the player reads it.
struct WebRecording: Encodable {
    var header: SessionRecording.Header
    var frames: [SessionRecording.Frame]
    var durationMs: Int
    var complete: Bool

    enum CodingKeys: String, CodingKey {
        case header, frames, complete
        case durationMs = "duration_ms"
    }
}
