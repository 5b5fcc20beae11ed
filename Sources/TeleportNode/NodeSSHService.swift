public import Foundation
public import Logging
import NIOCore
import NIOPosix
import NIOSSH
public import ServiceLifecycle
public import TeleportAPI
public import TeleportCrypto
public import TeleportSSH

/// The node's SSH server (`ssh_service`, port 3022): certificate-bound key authentication, login
/// sessions (terminal, shell, exec, sftp), and port forwarding when the certificate permits it.
public struct NodeSSHService: Service, CustomStringConvertible {
    let host: String
    let port: Int
    let hostKey: OpenSSHPrivateKey
    let cache: UserCertificateCache
    let settings: SessionSettings
    let logger: Logger
    let onListening: @Sendable (Int) async -> Void

    public var description: String { "NodeSSHService(\(host):\(port))" }

    /// Creates the service.
    public init(
        host: String, port: Int, hostKey: OpenSSHPrivateKey, cache: UserCertificateCache, settings: SessionSettings, logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.host = host
        self.port = port
        self.hostKey = hostKey
        self.cache = cache
        self.settings = settings
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        try await SSHServer.serve(
            host: host, port: port, configuration: configuration(), cache: cache, logger: logger, what: "SSH service",
            onListening: onListening, shutdown: { try? await gracefulShutdown() })
    }

    func configuration() -> SSHServer.Configuration {
        let settings = self.settings
        let logger = self.logger
        return SSHServer.Configuration(
            hostKey: hostKey, authorizer: cache,
            onAuthRefused: SSHServer.logRefusal(logger, "SSH login"),
            channelInitializer: { channel, type, connection in
                guard let user = connection.user else {
                    return channel.eventLoop.makeFailedFuture(TeleportError.accessDenied("not authenticated"))
                }
                switch type {
                case .session:
                    return channel.eventLoop.submit {
                        try channel.pipeline.syncOperations.addHandler(
                            SessionChannelHandler(settings: settings, connection: connection, user: user, logger: logger))
                    }
                case .directTCPIP(let target):
                    guard user.permits(SSHCertificate.permitPortForwarding) else {
                        logger.info("refused port forwarding: the certificate does not permit it", metadata: ["tp.user": "\(user.username)"])
                        return channel.eventLoop.makeFailedFuture(TeleportError.accessDenied("port forwarding is not permitted"))
                    }
                    return ChannelBridge.connect(channel, toHost: target.targetHost, port: target.targetPort)
                case .forwardedTCPIP:
                    return channel.eventLoop.makeFailedFuture(TeleportError.accessDenied("unexpected channel type"))
                }
            },
            globalRequests: { connection in RemoteForwardingDelegate(connection: connection, logger: logger) })
    }
}
