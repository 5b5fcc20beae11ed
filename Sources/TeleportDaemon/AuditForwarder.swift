import Foundation
import ServiceLifecycle
import TeleportAPI
import TeleportAuthClient
import TeleportEvents

/// Delivers a node's or proxy's audit events to the auth service (see ``AuditQueue``). At shutdown
/// it keeps delivering for a few seconds so that the last sessions' events are not left behind.
struct AuditForwarder: Service, CustomStringConvertible {
    let queue: AuditQueue
    let client: AuthClient

    var description: String { "AuditForwarder" }

    func run() async throws {
        let queue = self.queue
        let client = self.client
        let delivery = Task { await queue.run(send: { try await client.emitEvents($0) }) }
        try? await gracefulShutdown()
        queue.stop()
        let deadline = ContinuousClock.now + .seconds(5)
        while queue.pending > 0, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        delivery.cancel()
    }
}
