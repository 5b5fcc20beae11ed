import Foundation
import Logging
import ServiceLifecycle
import TeleportAuthServer

/// Signs the audit log's chain head every few seconds when it moved (and once more at shutdown), so
/// that `tctl audit verify` can tell a file whose last lines were removed.
struct AuditCheckpointService: Service, CustomStringConvertible {
    let auth: AuthServer
    let logger: Logger
    var interval: Duration = .seconds(5)

    var description: String { "AuditCheckpointService" }

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            // A shutdown ends the wait at once (then the last checkpoint is signed below).
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            if Task.isShuttingDownGracefully { break }
            do {
                try await auth.signAuditCheckpoint()
            } catch {
                logger.warning("cannot sign an audit checkpoint: \(error)")
            }
        }
        try? await auth.signAuditCheckpoint()
    }
}
