import Foundation
import Hummingbird
import HummingbirdCore
import TeleportHTTPListener
import Logging
import NIOCore
import TeleportEvents
import ServiceLifecycle
import TeleportAPI

/// The diagnostics listener (`--diag-addr`): `/healthz`, `/readyz` and `/metrics` (Prometheus text).
struct DiagServer: Service, CustomStringConvertible {
    let host: String
    let port: Int
    let readiness: Readiness
    let registry: TeleportMetrics
    let logger: Logger

    var description: String { "DiagServer(\(host):\(port))" }

    func run() async throws {
        let router = Router()
        router.get("healthz") { _, _ in Self.json(.ok, ["status": "ok"]) }
        let readiness = self.readiness
        router.get("readyz") { _, _ in
            let pending = readiness.pending
            if readiness.draining { return Self.json(.serviceUnavailable, ["status": "draining"]) }
            let problems = readiness.currentProblems
            if pending.isEmpty && problems.isEmpty { return Self.json(.ok, ["status": "ok"]) }
            if pending.isEmpty { return Self.json(.serviceUnavailable, ["status": "degraded", "reason": problems.joined(separator: "; ")]) }
            return Self.json(.serviceUnavailable, ["status": "starting", "waiting_for": pending.joined(separator: ",")])
        }
        let registry = self.registry
        router.get("metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: registry.render())))
        }
        // The socket comes from ListenerSockets (a graceful restart hands it on).
        let listener = HTTPListener(host: host, port: port, service: "diagnostics", logger: logger)
        let app = Application(
            router: router, server: listener.builder { responder in HTTP1Channel(responder: responder) },
            configuration: .init(address: listener.applicationAddress, serverName: "teleport-diag"),
            logger: logger)
        do {
            try await listener.run({ try await app.run() }, onListening: {})
        } catch let error as IOError {
            throw ListenError.describe(error, errno: error.errnoCode, address: HostPort.join(host, port), key: "teleport.diag_addr or --diag-addr")
        } catch let error as ListenSocketError {
            throw ListenError.describe(error, errno: error.errno, address: HostPort.join(host, port), key: "teleport.diag_addr or --diag-addr")
        }
    }

    static func json(_ status: HTTPResponse.Status, _ body: [String: String]) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
