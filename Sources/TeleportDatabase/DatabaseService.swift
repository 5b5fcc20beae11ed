public import Foundation
public import Logging
import Crypto
import NIOCore
import NIOPosix
import NIOSSL
public import ServiceLifecycle
import TeleportAccess
public import TeleportAPI
public import TeleportAuthClient
import TeleportCrypto
public import TeleportSSH
public import TeleportRecording
public import TeleportTunnel
import TeleportWire
import X509

/// The database service (`db_service`, `teleport start --roles=db`): heartbeats one `db_server`
/// record per configured database, and serves the proxy's connections on its listen address
/// with mutual TLS (its `Db` host identity; the proxy's `Proxy` identity). Each connection starts
/// with a ``DatabaseHandoff`` (the user's route-carrying certificate and start-up parameters);
/// the service checks the certificate and the user's roles (`db_labels`, `db_users`,
/// `db_names`, deny first) before it opens anything upstream, then connects to the database
/// over TLS with a short-lived client certificate for the database user from the db CA, sends
/// the start-up message and relays, auditing the session and its simple queries.
public struct DatabaseService: Service, CustomStringConvertible {
    public var description: String { "DatabaseService" }

    /// One database this service serves.
    public struct Database: Sendable, Equatable {
        /// How the service checks the database's certificate.
        public enum TLSMode: String, Sendable, Equatable, CaseIterable {
            /// The db CA (or `ca_cert_file`) and the host name (`server_name`, else the URI's host).
            case verifyFull = "verify-full"
            /// The CA only.
            case verifyCA = "verify-ca"
            /// No check (not recommended).
            case insecure
        }

        public var name: String
        public var description: String
        public var `protocol`: DatabaseServer.DatabaseProtocol
        /// `host:port`.
        public var uri: String
        public var labels: [String: String]
        public var tlsMode: TLSMode
        /// A CA file that signs the database's certificate (default: the cluster's db CA).
        public var caCertFile: String?
        /// The name to check the database's certificate against (verify-full).
        public var serverName: String?
        /// `dynamic_labels`: commands whose output are labels, as a node's `commands`.
        public var dynamicLabels: [CommandLabels.Command] = []

        /// Creates a database entry.
        public init(
            name: String, description: String = "", protocol: DatabaseServer.DatabaseProtocol, uri: String, labels: [String: String] = [:],
            tlsMode: TLSMode = .verifyFull, caCertFile: String? = nil, serverName: String? = nil
        ) {
            self.name = name
            self.description = description
            self.protocol = `protocol`
            self.uri = uri
            self.labels = labels
            self.tlsMode = tlsMode
            self.caCertFile = caCertFile
            self.serverName = serverName
        }
    }

    /// What the service needs.
    public struct Configuration: Sendable {
        public var hostUUID: String
        public var hostname: String
        public var clusterName: String
        /// Where the proxy connects (`db_service.listen_addr`).
        public var listenHost: String
        public var listenPort: Int
        /// The address registered for the proxy (`spec.addr`).
        public var advertisedAddr: String
        public var identity: ClientIdentity
        public var databases: [Database]
        /// The TLS context of the proxy's connections, asked per connection (a CA rotation
        /// replaces it when the identity is renewed or the trusted CAs change); nil: one
        /// built from ``identity`` at start.
        public var serverContexts: TLSContextSource?
        /// How often each record is sent (its TTL is set by the auth service).
        public var heartbeatInterval: Duration = .seconds(10)
        /// The reverse tunnel this service keeps to the proxy (a service behind NAT); nil: none.
        public var tunnel: TunnelTarget?
        /// Whether the service binds `listen_addr` (a tunnelled service without one does not).
        public var listens = true
        /// Where each session's statements are recorded for upload (``SessionUploader`` sends
        /// them); nil records nothing.
        public var recordingsDirectory: URL?

        /// Creates a configuration.
        public init(
            hostUUID: String, hostname: String, clusterName: String, listenHost: String, listenPort: Int, advertisedAddr: String,
            identity: ClientIdentity, databases: [Database]
        ) {
            self.hostUUID = hostUUID
            self.hostname = hostname
            self.clusterName = clusterName
            self.listenHost = listenHost
            self.listenPort = listenPort
            self.advertisedAddr = advertisedAddr
            self.identity = identity
            self.databases = databases
        }
    }

    let configuration: Configuration
    let auth: AuthClient
    let cache: UserCertificateCache
    let audit: DatabaseAudit
    let logger: Logger
    let onFirstHeartbeat: @Sendable () -> Void
    /// Each database's dynamic labels (only databases that have commands).
    let commandLabels: [String: CommandLabels]

    /// Creates the service.
    public init(
        configuration: Configuration, auth: AuthClient, cache: UserCertificateCache, audit: DatabaseAudit, logger: Logger,
        onFirstHeartbeat: @escaping @Sendable () -> Void = {}
    ) {
        self.configuration = configuration
        self.auth = auth
        self.cache = cache
        self.audit = audit
        self.logger = logger
        self.onFirstHeartbeat = onFirstHeartbeat
        var labels: [String: CommandLabels] = [:]
        for database in configuration.databases where !database.dynamicLabels.isEmpty {
            labels[database.name] = CommandLabels(commands: database.dynamicLabels, logger: logger)
        }
        self.commandLabels = labels
    }

    /// A database's labels as roles see them: static ones and the current dynamic ones (which
    /// win on a clash, as `tsh db ls` shows them).
    func labels(of database: Database) -> [String: String] {
        database.labels.merging(commandLabels[database.name]?.current.mapValues(\.result) ?? [:]) { $1 }
    }

    /// The `db_server` records this service heartbeats.
    public func records() -> [DatabaseServer] {
        configuration.databases.map { database in
            var spec = DatabaseServer.Spec(
                protocol: database.protocol, uri: database.uri, description: database.description.isEmpty ? nil : database.description,
                hostID: configuration.hostUUID, hostname: configuration.hostname, version: TeleportVersion.version)
            spec.addr = configuration.listens ? configuration.advertisedAddr : nil
            spec.useTunnel = configuration.tunnel == nil ? nil : true
            if let dynamic = commandLabels[database.name]?.current, !dynamic.isEmpty { spec.dynamicLabels = dynamic }
            return DatabaseServer(name: database.name, labels: database.labels.isEmpty ? nil : database.labels, spec: spec)
        }
    }

    public func run() async throws {
        let tls = try configuration.serverContexts ?? TLSContextSource(serverContext())
        let sessions = DatabaseSessions(service: self)
        var server: (any Channel)?
        if configuration.listens {
            do {
                server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .childChannelInitializer { channel in
                        countConnection("database", channel)
                        return channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.current))
                            try channel.pipeline.syncOperations.addHandler(HandoffGate(sessions: sessions))
                        }
                    }
                    .bindInheritable(host: configuration.listenHost, port: configuration.listenPort)
            } catch {
                throw ListenError.describe(
                    error, errno: listenErrno(error), address: HostPort.join(configuration.listenHost, configuration.listenPort),
                    key: "db_service.listen_addr")
            }
            logger.info(
                "database service is listening",
                metadata: ["tp.listen": "\(HostPort.join(configuration.listenHost, configuration.listenPort))",
                    "tp.databases": "\(configuration.databases.map(\.name).joined(separator: ","))"])
        }
        let agent = configuration.tunnel.map { target in
            // The proxy's `db` channels carry the same mutual TLS and hand-off as the listener's connections.
            ReverseTunnelAgent(
                configuration: ReverseTunnelAgent.Configuration(
                    target: target,
                    services: [
                        .database: { channel, _ in
                            countConnection("database", channel)
                            return channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.current))
                                try channel.pipeline.syncOperations.addHandler(HandoffGate(sessions: sessions))
                            }
                        }
                    ]),
                logger: logger)
        }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await cache.run() }
                // The first records carry the dynamic labels: each command runs once before the first heartbeat.
                for labels in commandLabels.values { await labels.runOnce() }
                for labels in commandLabels.values { group.addTask { await labels.run(startNow: false) } }
                group.addTask { await heartbeats() }
                if let agent { group.addTask { await agent.run() } }
                await group.waitForAll()
            }
        }
        try? await server?.close()
    }

    /// Sends every record now and then every interval, until cancelled.
    func heartbeats() async {
        var first = true
        while !Task.isCancelled {
            var failed = false
            for record in records() {
                do {
                    try await auth.heartbeat(database: record)
                } catch {
                    failed = true
                    logger.warning("database heartbeat failed: \(error)", metadata: ["tp.db": "\(record.name)"])
                }
            }
            if first && !failed {
                first = false
                onFirstHeartbeat()
            }
            do { try await Task.sleep(for: failed ? .seconds(1) : configuration.heartbeatInterval) } catch { return }
        }
    }

    /// Mutual TLS with the proxy: this host's `Db` identity; the client must present a
    /// certificate from the cluster's CAs (its role is checked per connection).
    func serverContext() throws -> NIOSSLContext {
        try Self.serverContext(identity: configuration.identity)
    }

    /// The contexts for ``Configuration/serverContexts``, starting with `identity`'s.
    public static func serverContexts(identity: ClientIdentity) throws -> TLSContextSource {
        TLSContextSource(try serverContext(identity: identity))
    }

    /// Presents `identity` and trusts its CAs from the next connection on (open ones keep theirs).
    public static func renew(_ contexts: TLSContextSource, identity: ClientIdentity) throws {
        contexts.set(try serverContext(identity: identity))
    }

    static func serverContext(identity: ClientIdentity) throws -> NIOSSLContext {
        do {
            let key = try NIOSSLPrivateKey(bytes: Array(identity.keyPEM.utf8), format: .pem)
            var tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(identity.certificatePEM.utf8)).map { .certificate($0) },
                privateKey: .privateKey(key))
            tls.trustRoots = .certificates(try identity.trustedCAPEMs.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) })
            tls.certificateVerification = .noHostnameVerification
            tls.minimumTLSVersion = .tlsv12
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw TeleportError.badParameter("the database service's identity cannot be loaded (data_dir/keys/db.*): \(error)")
        }
    }
}
