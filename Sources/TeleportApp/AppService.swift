import Foundation
public import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
public import ServiceLifecycle
public import TeleportAPI
public import TeleportAuthClient
public import TeleportSSH
public import TeleportTunnel

/// The application service (`app_service`, `teleport start --roles=app`): heartbeats one
/// `app_server` record per configured web app, and serves the proxy's connections on its listen
/// address with mutual TLS (its `App` host identity; the proxy's `Proxy` identity). Each
/// connection starts with a hand-off (the user's route-carrying certificate and the client's
/// address); the service checks the certificate, its app route and the user's roles
/// (`app_labels`) before it answers any request, then forwards each HTTP request to the app with
/// the user's identity in a signed `teleport-jwt-assertion`, auditing the session and its requests.
public struct AppService: Service, CustomStringConvertible {
    public var description: String { "AppService" }

    /// One web app this service serves.
    public struct App: Sendable, Equatable {
        /// One header added to every request (`rewrite.headers`).
        public struct Header: Sendable, Equatable {
            /// The header's name.
            public var name: String
            /// Its value.
            public var value: String

            /// Creates a header.
            public init(name: String, value: String) {
                self.name = name
                self.value = value
            }
        }

        /// The app's name (a DNS label: the first label of its default public address).
        public var name: String
        /// A line for people.
        public var description: String
        /// `http://` or `https://` internal address, or `tcp://HOST:PORT` (a TCP app).
        public var uri: String
        /// The public host name (nil: `NAME.<proxy public host>`).
        public var publicAddr: String?
        /// Static labels (`app_labels` select on them).
        public var labels: [String: String]
        /// Skip the check of an `https://` app's certificate.
        public var insecureSkipVerify: Bool
        /// More internal host names whose redirects are rewritten to the public address.
        public var redirectHosts: [String]
        /// Headers added to every request.
        public var headers: [Header]

        /// Creates an app entry.
        public init(
            name: String, description: String = "", uri: String, publicAddr: String? = nil, labels: [String: String] = [:],
            insecureSkipVerify: Bool = false, redirectHosts: [String] = [], headers: [Header] = []
        ) {
            self.name = name
            self.description = description
            self.uri = uri
            self.publicAddr = publicAddr
            self.labels = labels
            self.insecureSkipVerify = insecureSkipVerify
            self.redirectHosts = redirectHosts
            self.headers = headers
        }
    }

    /// What the service needs.
    public struct Configuration: Sendable {
        /// This host's UUID (the records' `host_id`).
        public var hostUUID: String
        /// This host's name (`nodename`).
        public var hostname: String
        /// The cluster the identity belongs to.
        public var clusterName: String
        /// Where the proxy connects (`app_service.listen_addr`).
        public var listenHost: String
        public var listenPort: Int
        /// The address registered for the proxy (`spec.addr`).
        public var advertisedAddr: String
        /// This host's `App` identity (mutual TLS with the proxy and the auth service).
        public var identity: ClientIdentity
        /// The TLS context of the proxy's connections, asked per connection (a CA rotation
        /// replaces it when the identity is renewed or the trusted CAs change); nil: one
        /// built from ``identity`` at start.
        public var serverContexts: TLSContextSource?
        /// The apps served.
        public var apps: [App]
        /// How often each record is sent (its TTL is set by the auth service).
        public var heartbeatInterval: Duration = .seconds(10)
        /// How long the app has to answer a request's head.
        public var responseTimeout: Duration = .seconds(60)

        /// Creates a configuration.
        public init(
            hostUUID: String, hostname: String, clusterName: String, listenHost: String, listenPort: Int, advertisedAddr: String,
            identity: ClientIdentity, apps: [App]
        ) {
            self.hostUUID = hostUUID
            self.hostname = hostname
            self.clusterName = clusterName
            self.listenHost = listenHost
            self.listenPort = listenPort
            self.advertisedAddr = advertisedAddr
            self.identity = identity
            self.apps = apps
        }
    }

    let configuration: Configuration
    let auth: AuthClient
    let cache: UserCertificateCache
    let audit: AppAudit
    let logger: Logger
    let onFirstHeartbeat: @Sendable () -> Void
    /// The public addresses of the apps, as last heartbeated (the proxies' host decides the default).
    let publicAddrs = PublicAddrs()

    /// Creates the service.
    public init(
        configuration: Configuration, auth: AuthClient, cache: UserCertificateCache, audit: AppAudit, logger: Logger,
        onFirstHeartbeat: @escaping @Sendable () -> Void = {}
    ) {
        self.configuration = configuration
        self.auth = auth
        self.cache = cache
        self.audit = audit
        self.logger = logger
        self.onFirstHeartbeat = onFirstHeartbeat
    }

    /// The public address of `app`: its own, else `NAME.<proxy public host>`; nil when no proxy
    /// has said its public address yet.
    public static func publicAddr(of app: App, proxyPublicAddr: String?) -> String? {
        if let own = app.publicAddr, !own.isEmpty { return own.lowercased() }
        guard let proxy = proxyPublicAddr, !proxy.isEmpty else { return nil }
        let host = AppRequestRules.hostName(proxy)
        guard !host.isEmpty else { return nil }
        return "\(app.name).\(host)".lowercased()
    }

    /// The `app_server` records this service heartbeats.
    public func records(proxyPublicAddr: String?) -> [AppServer] {
        configuration.apps.compactMap { app in
            guard let publicAddr = Self.publicAddr(of: app, proxyPublicAddr: proxyPublicAddr) else { return nil }
            var spec = AppServer.Spec(
                uri: app.uri, publicAddr: publicAddr, description: app.description.isEmpty ? nil : app.description,
                hostID: configuration.hostUUID, hostname: configuration.hostname, version: TeleportVersion.version)
            spec.addr = configuration.advertisedAddr
            return AppServer(name: app.name, labels: app.labels.isEmpty ? nil : app.labels, spec: spec)
        }
    }

    public func run() async throws {
        let tls = try configuration.serverContexts ?? TLSContextSource(serverContext())
        let tcpApps = Set(configuration.apps.filter { AppURI.isTCP($0.uri) }.map(\.name))
        let sessions = AppSessions(service: self)
        let server: NIOAsyncChannel<(any Channel, AppServiceFront, EventLoopFuture<DatabaseHandoff>), Never>
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .bindInheritable(host: configuration.listenHost, port: configuration.listenPort, service: "application") { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handoff = channel.eventLoop.makePromise(of: DatabaseHandoff.self)
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.current))
                        try channel.pipeline.syncOperations.addHandler(AppHandoffGate(handoff: handoff, tcpApps: tcpApps))
                        // An upgrade configuration without upgraders: NIO's decoder then keeps the bytes
                        // that follow an upgrade request for the splice of a WebSocket (AppSessions).
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                            withServerUpgrade: (upgraders: [], completionHandler: { _ in }), withErrorHandling: true)
                        let front = AppServiceFront(sessions: sessions)
                        try channel.pipeline.syncOperations.addHandler(front)
                        return (channel, front, handoff.futureResult)
                    }
                }
        } catch {
            throw ListenError.describe(
                error, errno: listenErrno(error), address: HostPort.join(configuration.listenHost, configuration.listenPort),
                key: "app_service.listen_addr")
        }
        logger.info(
            "application service is listening",
            metadata: ["tp.listen": "\(HostPort.join(configuration.listenHost, configuration.listenPort))",
                "tp.apps": "\(configuration.apps.map(\.name).joined(separator: ","))"])
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await cache.run() }
                group.addTask { await heartbeats() }
                group.addTask {
                    try? await server.executeThenClose { inbound in
                        try await withThrowingDiscardingTaskGroup { connections in
                            for try await (connection, front, handoff) in inbound {
                                connections.addTask { await sessions.serve(connection, front: front, handoff: handoff) }
                            }
                        }
                    }
                }
                await group.waitForAll()
            }
        }
    }

    /// Sends every record now and then every interval, until cancelled.
    func heartbeats() async {
        var first = true
        while !Task.isCancelled {
            var failed = false
            let proxyAddr = try? await auth.proxies().compactMap(\.spec.publicAddr).first { !$0.isEmpty }
            let records = records(proxyPublicAddr: proxyAddr)
            if records.count < configuration.apps.count {
                failed = true
                logger.warning("no proxy has registered its public address yet: apps without public_addr wait for one")
            }
            for record in records {
                do {
                    try await auth.heartbeat(app: record)
                    publicAddrs.set(record.name, record.spec.publicAddr)
                } catch {
                    failed = true
                    logger.warning("app heartbeat failed: \(error)", metadata: ["tp.app": "\(record.name)"])
                }
            }
            if first && !failed {
                first = false
                onFirstHeartbeat()
            }
            do { try await Task.sleep(for: failed ? .seconds(1) : configuration.heartbeatInterval) } catch { return }
        }
    }

    /// Mutual TLS with the proxy: this host's `App` identity; the client must present a
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
            throw TeleportError.badParameter("the application service's identity cannot be loaded (data_dir/keys/app.*): \(error)")
        }
    }
}

/// The apps' public addresses as last heartbeated, by name.
final class PublicAddrs: Sendable {
    private let addrs = Mutex<[String: String]>([:])

    func set(_ name: String, _ addr: String) { addrs.withLock { $0[name] = addr } }
    func get(_ name: String) -> String? { addrs.withLock { $0[name] } }
}
