public import Foundation
public import TeleportAPI
import TeleportEvents

extension AuthServer {
    /// The largest event stored whole; larger ones have their long strings cut and `truncated` set.
    static let maxEventBytes = 64 * 1024
    /// The longest string field kept in an event that was too large.
    static let maxTruncatedField = 1024

    /// Stores events a node or proxy sent. The caller's own host ID becomes `server_id` (a host
    /// speaks only for itself); the rest is checked for form and size.
    public func receiveEvents(_ events: [AuditEvent], fromHost hostID: String?) async throws {
        for var event in events {
            guard !event.event.isEmpty, event.event.count <= 64, event.event.allSatisfy({ $0.isLetter || $0 == "." || $0 == "_" }),
                event.code.count <= 16, event.code.allSatisfy({ $0.isLetter || $0.isNumber })
            else {
                throw TeleportError.badParameter("an audit event needs an event name (letters, dots) and a code such as T2000I")
            }
            if let hostID { event.fields["server_id"] = .string(hostID) }
            if try event.jsonLine().count > Self.maxEventBytes { event = Self.truncated(event) }
            try await audit.emit(event)
        }
    }

    /// `event` with every long string field cut, marked `truncated`.
    static func truncated(_ event: AuditEvent) -> AuditEvent {
        var cut = event
        func shorten(_ value: JSONValue) -> JSONValue {
            switch value {
            case .string(let text) where text.utf8.count > maxTruncatedField:
                return .string(String(decoding: Array(text.utf8.prefix(maxTruncatedField)), as: UTF8.self) + "…")
            case .array(let items): return .array(Array(items.prefix(100)).map(shorten))
            case .object(let object): return .object(object.mapValues(shorten))
            default: return value
            }
        }
        cut.fields = cut.fields.mapValues(shorten)
        cut.fields["truncated"] = true
        return cut
    }

    /// Events between `from` and `to` of the given types (all when empty), `limit` from `startKey` on.
    public func searchEvents(from: Date, to: Date, types: Set<String>, limit: Int, startKey: Int) async throws -> AuthAPI.EventsPage {
        guard let reader = audit as? any AuditReader else {
            throw TeleportError.badParameter("the audit log of this cluster cannot be searched: configure a file:// audit_events_uri")
        }
        let all = try await reader.events(from: from, to: to).filter { types.isEmpty || types.contains($0.event) }
        let start = min(max(startKey, 0), all.count)
        let end = min(start + max(limit, 1), all.count)
        let page = try all[start..<end].map { try ResourceCodec.jsonDecoder().decode([String: JSONValue].self, from: $0.jsonLine()) }
        return AuthAPI.EventsPage(events: page, nextKey: end < all.count ? String(end) : nil)
    }
}
