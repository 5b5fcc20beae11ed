public import TeleportAPI

/// Where audit events go. Implementations must not lose an event silently: they either store it or throw.
public protocol AuditEmitter: Sendable {
    /// Stores one event.
    func emit(_ event: AuditEvent) async throws
}

/// Sends every event to several emitters (the seed's `audit_events_uri` list).
public struct MultiEmitter: AuditEmitter {
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
}
