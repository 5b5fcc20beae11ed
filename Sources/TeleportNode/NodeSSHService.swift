public import Foundation
public import Logging
import NIOCore
import NIOPosix
import NIOSSH
public import NIOSSL
public import ServiceLifecycle
public import TeleportAPI
public import TeleportCrypto
public import TeleportSSH
import TeleportEvents
public import TeleportRecording
public import TeleportTunnel
import Synchronization
public import TeleportAuthClient

/// The node's SSH server (`ssh_service`, port 3022): certificate-bound key authentication, login
/// sessions (terminal, shell, exec, sftp), and port forwarding when the certificate permits it.
public struct NodeSSHService: Service, CustomStringConvertible {
    let host: String
    let port: Int
    let hostKey: OpenSSHPrivateKey
    let cache: UserCertificateCache
    let settings: SessionSettings
    let audit: SSHAudit?
    let logger: Logger
    let onListening: @Sendable (Int) async -> Void
    /// `teleport.connection_limits` of this listener (nil: no limits).
    public var limiter: ConnectionLimiter?
    /// When fired (the node's identity was removed), the SSH service stops listening.
    var stop: NodeStop?
    /// Whether the service binds `host:port` (a tunnelled node without `listen_addr` does not).
    var listen = true
    /// The reverse tunnel that brings this node's connections from the proxy, if any.
    var tunnel: TunnelTarget?

    /// Where a tunnelled node keeps its reverse tunnel.
    public typealias TunnelTarget = TeleportTunnel.TunnelTarget

    /// A copy that keeps a reverse tunnel to `target`; `listen` false binds no port (the node is
    /// reached through the tunnel only).
    public func tunnelled(to target: TunnelTarget?, listen: Bool) -> NodeSSHService {
        var copy = self
        copy.tunnel = target
        copy.listen = listen
        return copy
    }

    /// A copy that stops listening when `stop` fires (the rest of the process keeps running).
    public func stopping(_ stop: NodeStop) -> NodeSSHService {
        var copy = self
        copy.stop = stop
        return copy
    }

    public var description: String { "NodeSSHService(\(host):\(port))" }

    /// Creates the service.
    public init(
        host: String, port: Int, hostKey: OpenSSHPrivateKey, cache: UserCertificateCache, settings: SessionSettings, audit: SSHAudit? = nil,
        recordings: URL? = nil, auth: AuthClient? = nil, access: NodeAccess? = nil, logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.host = host
        self.port = port
        self.hostKey = hostKey
        self.cache = cache
        self.audit = audit
        var settings = settings
        if let access {
            settings.authorize = { user, request in access.check(user, request) }
            settings.idleTimeout = { user in access.idleTimeout(user) }
        }
        if let audit {
            // Every session is audited; none starts while the audit log cannot take its events.
            let live = LiveSessions()
            settings.live = live
            settings.mayJoin = { joiner, session in
                joiner.username == session.owner.username || access?.mayJoin(joiner) == true
            }
            settings.onParty = { session, user, joined in audit.party(session, user, joined: joined) }
            settings.onStart = { event in
                audit.started(event)
                // Sessions with a terminal (shells and commands run with -t) are listed
                // cluster-wide for tsh sessions ls / tsh join.
                if let auth, event.isJoinable {
                    var command: String?
                    if case .exec(let text) = event.kind { command = text }
                    let active = AuthAPI.ActiveSession(
                        sid: event.sessionID, user: event.user.username, login: event.user.login, serverID: audit.serverID,
                        serverHostname: audit.hostname, created: Date(), command: command)
                    Task { try? await auth.reportActiveSession(active) }
                }
            }
            settings.onEnd = { event, exit, started, participants in
                audit.ended(event, exit: exit, started: started, participants: participants)
                if let auth, event.isJoinable {
                    Task { try? await auth.endActiveSession(event.sessionID) }
                }
            }
            settings.onResize = { event, columns, rows in audit.resized(event, columns: columns, rows: rows) }
            settings.onRejected = { connection, user, request, refusal in audit.rejected(connection, user, request: request, refusal: refusal) }
            if let recordings {
                settings.makeRecorder = { event in
                    do {
                        return try SessionRecorder(
                            directory: recordings,
                            header: .init(
                                sid: event.sessionID, user: event.user.username, login: event.user.login, serverID: audit.serverID,
                                serverHostname: audit.hostname, start: Date(), size: event.terminalSize ?? "80:24"))
                    } catch {
                        logger.error("cannot record a session: \(error)", metadata: ["tp.sid": "\(event.sessionID)"])
                        return nil
                    }
                }
            }
            settings.refusal = {
                audit.queue.admits ? nil : "this node cannot reach its audit log, so it starts no sessions now (fail closed); try again later"
            }
        }
        self.settings = settings
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let agentTask = Mutex<Task<Void, Never>?>(nil)
        let tunnel = self.tunnel
        let tunnelLogger = {
            var copy = self.logger
            copy[metadataKey: "tp.component"] = "node:tunnel"
            return copy
        }()
        try await SSHServer.serve(
            host: host, port: port, configuration: configuration(), cache: cache, logger: logger, what: "SSH service", listen: listen,
            onStarted: { server in
                guard let tunnel else { return }
                let connections = server.connections
                var agentConfiguration = ReverseTunnelAgent.Configuration(
                    hostUUID: tunnel.hostUUID, clusterName: tunnel.clusterName, proxyHost: tunnel.proxyHost, proxyPort: tunnel.proxyPort,
                    tlsContext: tunnel.tlsContext,
                    services: [
                        .nodeSSH: { channel, originator in
                            // The local end of the tunnel's connection stands for the address the
                            // client reached (SSH_CONNECTION, SSH_CLIENT, audit's addr.local).
                            connections.configure(
                                channel: channel, remoteAddress: originator, localAddress: channel.localAddress ?? channel.parent?.localAddress)
                        }
                    ]
                ).resolving(tunnel.resolve).reconnecting(tunnel.reconnect)
                agentConfiguration.contextSource = tunnel.contextSource
                agentConfiguration.discoverProxies = tunnel.discoverProxies
                let agent = ReverseTunnelAgent(configuration: agentConfiguration, logger: tunnelLogger)
                agentTask.withLock { $0 = Task { await agent.run() } }
            },
            onListening: onListening,
            shutdown: { [stop] in
                await NodeStop.untilShutdown(or: stop)
                agentTask.withLock { $0?.cancel() }
            })
        if stop?.fired == true {
            logger.error("the node's SSH service stopped listening: this host's node identity was removed from the cluster")
            // Returning would end the whole service group: wait for the process's own shutdown.
            try? await gracefulShutdown()
        }
    }

    func configuration() -> SSHServer.Configuration {
        let settings = self.settings
        let logger = self.logger
        let audit = self.audit
        var configuration = SSHServer.Configuration(
            hostKey: hostKey, authorizer: cache,
            onAuthRefused: SSHServer.logRefusal(logger, "SSH login"),
            channelInitializer: { channel, type, connection, user in
                switch type {
                case .session:
                    return channel.eventLoop.submit {
                        try channel.pipeline.syncOperations.addHandler(
                            SessionChannelHandler(settings: settings, connection: connection, user: user, logger: logger))
                    }
                case .directTCPIP(let target):
                    let address = HostPort.join(target.targetHost, target.targetPort)
                    if let refused = settings.authorize(user, .portForwarding) {
                        logger.info("refused port forwarding: \(refused.reason)", metadata: ["tp.user": "\(user.username)"])
                        audit?.portForward(connection, user: user, target: address, error: refused)
                        return channel.eventLoop.makeFailedFuture(TeleportError.accessDenied(refused.reason))
                    }
                    guard user.permits(SSHCertificate.permitPortForwarding) else {
                        logger.info("refused port forwarding: the certificate does not permit it", metadata: ["tp.user": "\(user.username)"])
                        let error = TeleportError.accessDenied("port forwarding is not permitted")
                        audit?.portForward(connection, user: user, target: address, error: error)
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                    let connected = ChannelBridge.connect(channel, toHost: target.targetHost, port: target.targetPort)
                    connected.whenComplete { result in
                        if case .failure(let error) = result {
                            audit?.portForward(connection, user: user, target: address, error: error)
                        } else {
                            audit?.portForward(connection, user: user, target: address, error: nil)
                        }
                    }
                    return connected
                case .forwardedTCPIP:
                    return channel.eventLoop.makeFailedFuture(TeleportError.accessDenied("unexpected channel type"))
                }
            },
            globalRequests: { connection in RemoteForwardingDelegate(
                    connection: connection, audit: audit, authorize: { settings.authorize($0, .portForwarding) }, logger: logger) })
        configuration.audit = audit
        configuration.connectionService = "node SSH"
        return limiter?.apply(to: configuration) ?? configuration
    }
}
