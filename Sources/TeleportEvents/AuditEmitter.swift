public import Foundation
public import TeleportAPI

/// Where audit events go. Implementations must not lose an event silently: they either store it or throw.
public protocol AuditEmitter: Sendable {
    /// Stores one event.
    func emit(_ event: AuditEvent) async throws
}

/// A log that can be searched (the `file://` log; `stdout://` cannot).
public protocol AuditReader: Sendable {
    /// The events stored for the UTC days from `from` to `to` (whole days), in order.
    func events(from: Date, to: Date) async throws -> [AuditEvent]
}

/// A log that filters and pages in its store (the `postgresql://` log), so a search over millions of
/// events reads only the page asked for.
public protocol AuditSearcher: Sendable {
    /// The events between `from` and `to` (inclusive) of the given types (all when empty), of one
    /// `user` and one session when given, in order of time, `limit` of them after skipping `offset`;
    /// `more` tells whether any follow.
    func search(
        from: Date, to: Date, types: Set<String>, user: String?, sessionID: String?, limit: Int, offset: Int
    ) async throws -> (events: [AuditEvent], more: Bool)
}

/// Sends every event to several emitters (the seed's `audit_events_uri` list).
public struct MultiEmitter: AuditEmitter, AuditReader {
    /// The emitters, in order.
    public let emitters: [any AuditEmitter]

    /// Creates a fan-out emitter.
    public init(_ emitters: [any AuditEmitter]) { self.emitters = emitters }

    public func emit(_ event: AuditEvent) async throws {
        var firstError: (any Error)?
        for emitter in emitters {
            do { try await emitter.emit(event) } catch { firstError = firstError ?? error }
        }
        if let firstError { throw firstError }
    }

    /// Searches the first emitter that can be searched.
    public func events(from: Date, to: Date) async throws -> [AuditEvent] {
        for case let reader as any AuditReader in emitters { return try await reader.events(from: from, to: to) }
        throw TeleportError.badParameter("no audit_events_uri of this cluster can be searched: add a file:// one")
    }
}
