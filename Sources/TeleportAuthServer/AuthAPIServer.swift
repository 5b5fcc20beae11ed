public import Crypto
public import Foundation
public import Logging
package import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOCore
import NIOSSL
public import ServiceLifecycle
public import TeleportAPI
import TeleportCrypto
import TeleportHTTPListener
import X509

/// The auth API: HTTPS with mutual TLS on `auth_service.listen_addr` (3025). Clients must present a
/// certificate of this cluster's user or host CA.
public struct AuthAPIServer: Service, CustomStringConvertible {
    let auth: AuthServer
    let host: String
    let port: Int
    let tls: AuthServerTLS
    let logger: Logger
    let onListening: @Sendable () async -> Void
    /// How long a connection may take to complete the TLS handshake and send a request head, and
    /// stay idle between requests, before the server closes it (a connection that sends nothing
    /// is not held forever). A request being answered (a long poll) is not cut.
    public var idleTimeout: Duration = Self.defaultIdleTimeout
    /// The default ``idleTimeout``.
    public static let defaultIdleTimeout: Duration = .seconds(10)

    /// Prepares the server: issues the auth service's own TLS certificate (valid for
    /// ``AuthAPI/serverName``, `localhost` and the given addresses) from the host CA.
    public static func make(
        auth: AuthServer, host: String, port: Int, hostID: String, extraNames: [String], logger: Logger,
        onListening: @escaping @Sendable () async -> Void = {}
    ) async throws -> AuthAPIServer {
        let key = P256.Signing.PrivateKey()
        var dns = [AuthAPI.serverName, "localhost"]
        var ips = ["127.0.0.1", "::1"]
        for name in extraNames where !name.isEmpty {
            if IPAddressBytes.parse(name) != nil { ips.append(name) } else { dns.append(name) }
        }
        let tls = try await AuthServerTLS(
            auth: auth, hostID: "\(hostID).\(auth.clusterName)", names: .init(dnsNames: dns, ipAddresses: ips))
        // A rotation step taken here is in the server's certificate and trust before its caller's
        // answer (the periodic refresh covers steps other auth servers take).
        auth.onRotation { try? await tls.refresh() }
        return AuthAPIServer(auth: auth, host: host, port: port, tls: tls, logger: logger, onListening: onListening)
    }

    /// The `/v1` routes over `auth`, authenticating callers by the certificates `peerCertificates`
    /// yields: ``PeerCertificateSource/tls`` in the server; in-process tests drive the same router
    /// (HummingbirdTesting) with certificates they issue from the cluster's CAs.
    package static func router(auth: AuthServer, peerCertificates: PeerCertificateSource) -> Router<AuthRequestContext> {
        let router = Router(context: AuthRequestContext.self)
        AuthAPIRoutes(auth: auth, peerCertificates: peerCertificates).register(on: router)
        return router
    }

    /// Names the service without its fields: the TLS configuration holds the private key.
    public var description: String { "AuthAPIServer(\(host):\(port))" }

    public func run() async throws {
        let router = Self.router(auth: auth, peerCertificates: .tls)
        let onListening = self.onListening
        // The socket comes from ListenerSockets (a graceful restart hands it on).
        let listener = HTTPListener(host: host, port: port, service: "auth API", logger: logger)
        let tls = self.tls
        let idle = TimeAmount(idleTimeout)
        let app = Application(
            router: router,
            server: listener.builder { responder in
                ReloadingTLSChannel(base: HTTP1Channel(responder: responder, configuration: .init(idleTimeout: idle)), tls: tls)
            },
            configuration: .init(address: listener.applicationAddress, serverName: "teleport-auth"),
            logger: logger)
        let auth = self.auth
        let logger = self.logger
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    await auth.presence.run { error in
                        logger.error("cannot write node heartbeats", metadata: ["tp.error": "\(error)"])
                    }
                }
                group.addTask {
                    // Trust read per handshake: the roots follow the CAs (a rotation), and the
                    // server's own certificate follows the host CA's signing keys.
                    var reported = false
                    while !Task.isCancelled {
                        do {
                            try await tls.refresh()
                            reported = false
                        } catch {
                            if !reported { logger.warning("cannot refresh the auth API's TLS trust", metadata: ["tp.error": "\(error)"]) }
                            reported = true
                        }
                        try? await Task.sleep(for: .seconds(1))
                    }
                }
                group.addTask {
                    // Long polls of the certificate feed answer at once when the server stops,
                    // so its graceful shutdown does not wait for them.
                    try? await gracefulShutdown()
                    await auth.userCertificates.stop()
                }
                try await listener.run({ try await app.run() }, onListening: onListening)
                group.cancelAll()
            }
        } catch let error as IOError {
            throw ListenError.describe(error, errno: error.errnoCode, address: HostPort.join(host, port), key: "auth_service.listen_addr")
        } catch let error as ListenSocketError {
            throw ListenError.describe(error, errno: error.errno, address: HostPort.join(host, port), key: "auth_service.listen_addr")
        }
    }
}
