public import Foundation
public import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
public import ServiceLifecycle
public import TeleportAPI
public import TeleportAuthClient
public import TeleportRecording
public import TeleportSSH
public import TeleportTunnel

/// The Kubernetes service (`kubernetes_service`, `teleport start --roles=kube`): heartbeats one
/// `kube_server` record per cluster of its kubeconfig, and serves the proxy's connections (on
/// its listen address, or through its reverse tunnel) with mutual TLS (its `Kube` host
/// identity; the proxy's `Proxy` identity). Each connection starts with a hand-off (the user's
/// route-carrying certificate and the client's address); the service checks the certificate,
/// its cluster route and the user's roles (`kubernetes_labels`), then relays each HTTP/1.1
/// request to the API server with the kubeconfig's credentials and the impersonation headers the
/// roles grant (``KubeImpersonation``), auditing every request (``KubeAudit``) and recording
/// interactive `exec`/`attach` sessions.
public struct KubeService: Service, CustomStringConvertible {
    public var description: String { "KubeService" }

    /// What the service needs.
    public struct Configuration: Sendable {
        /// This host's UUID (the records' `host_id`).
        public var hostUUID: String
        /// This host's name (`nodename`).
        public var hostname: String
        /// The Teleport cluster the identity belongs to.
        public var clusterName: String
        /// Where the proxy connects (`kubernetes_service.listen_addr`).
        public var listenHost: String
        public var listenPort: Int
        /// The address registered for the proxy (`spec.addr`).
        public var advertisedAddr: String
        /// This host's `Kube` identity.
        public var identity: ClientIdentity
        /// The clusters served.
        public var clusters: [KubeCluster]
        /// Static labels of every cluster (`kubernetes_service.labels`).
        public var labels: [String: String]
        /// Dynamic labels of every cluster (`kubernetes_service.commands`).
        public var dynamicLabels: [CommandLabels.Command] = []
        /// The TLS context of the proxy's connections, asked per connection (a CA rotation
        /// replaces it when the identity is renewed or the trusted CAs change); nil: one
        /// built from ``identity`` at start.
        public var serverContexts: TLSContextSource?
        /// How often each record is sent.
        public var heartbeatInterval: Duration = .seconds(10)
        /// The reverse tunnel this service keeps to the proxy (a service behind NAT); nil: none.
        public var tunnel: TunnelTarget?
        /// Whether the service binds `listen_addr` (a tunnelled service without one does not).
        public var listens = true
        /// Where interactive sessions are recorded for upload; nil records nothing.
        public var recordingsDirectory: URL?
        /// The largest request body relayed (a larger one gets 413).
        public var maxRequestBody = 32 << 20

        /// Creates a configuration.
        public init(
            hostUUID: String, hostname: String, clusterName: String, listenHost: String, listenPort: Int, advertisedAddr: String,
            identity: ClientIdentity, clusters: [KubeCluster], labels: [String: String]
        ) {
            self.hostUUID = hostUUID
            self.hostname = hostname
            self.clusterName = clusterName
            self.listenHost = listenHost
            self.listenPort = listenPort
            self.advertisedAddr = advertisedAddr
            self.identity = identity
            self.clusters = clusters
            self.labels = labels
        }
    }

    let configuration: Configuration
    let auth: AuthClient
    let cache: UserCertificateCache
    let audit: KubeAudit
    let logger: Logger
    let onFirstHeartbeat: @Sendable () -> Void
    /// The dynamic labels' commands and latest results (nil: none configured).
    let commandLabels: CommandLabels?
    /// The address in the records: ``Configuration/advertisedAddr``, with the bound port when
    /// the listen port is 0 (the seed's `proxy_service.kubernetes.kubeconfig_file`).
    let advertised: AdvertisedAddress
    /// The interactive sessions relayed now, for `tsh join`.
    let live = KubeLiveSessions()

    /// Creates the service.
    public init(
        configuration: Configuration, auth: AuthClient, cache: UserCertificateCache, audit: KubeAudit, logger: Logger,
        onFirstHeartbeat: @escaping @Sendable () -> Void = {}
    ) {
        self.configuration = configuration
        self.auth = auth
        self.cache = cache
        self.audit = audit
        self.logger = logger
        self.onFirstHeartbeat = onFirstHeartbeat
        commandLabels = configuration.dynamicLabels.isEmpty ? nil : CommandLabels(commands: configuration.dynamicLabels, logger: logger)
        advertised = AdvertisedAddress(configuration.advertisedAddr)
    }

    /// The clusters' labels as roles see them: static ones and the current dynamic ones (which
    /// win on a clash, as `tsh kube ls` shows them).
    var labels: [String: String] {
        configuration.labels.merging(commandLabels?.current.mapValues(\.result) ?? [:]) { $1 }
    }

    /// The `kube_server` records this service heartbeats.
    public func records() -> [KubeServer] {
        configuration.clusters.map { cluster in
            var spec = KubeServer.Spec(
                hostID: configuration.hostUUID, hostname: configuration.hostname, version: TeleportVersion.version,
                addr: configuration.listens ? advertised.value.withLock { $0 } : nil, useTunnel: configuration.tunnel == nil ? nil : true)
            if let dynamic = commandLabels?.current, !dynamic.isEmpty { spec.dynamicLabels = dynamic }
            return KubeServer(name: cluster.name, labels: configuration.labels.isEmpty ? nil : configuration.labels, spec: spec)
        }
    }

    typealias Accepted = (KubeSessions.Connection, EventLoopFuture<DatabaseHandoff>)

    public func run() async throws {
        let tls = try configuration.serverContexts ?? TLSContextSource(serverContext())
        let sessions = KubeSessions(service: self)
        // Connections from the listener and from the tunnel meet in one stream.
        let (incoming, continuation) = AsyncStream.makeStream(of: Accepted.self)
        @Sendable func adopt(_ channel: any Channel) -> EventLoopFuture<Void> {
            countConnection("kube", channel)
            return channel.eventLoop.makeCompletedFuture {
                let handoff = channel.eventLoop.makePromise(of: DatabaseHandoff.self)
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.current))
                try channel.pipeline.syncOperations.addHandler(KubeHandoffGate(handoff: handoff))
                let connection = try KubeSessions.Connection(wrappingChannelSynchronously: channel)
                continuation.yield((connection, handoff.futureResult))
            }
        }
        var server: (any Channel)?
        if configuration.listens {
            do {
                server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .childChannelInitializer { channel in adopt(channel) }
                    .bindInheritable(host: configuration.listenHost, port: configuration.listenPort)
            } catch {
                throw ListenError.describe(
                    error, errno: listenErrno(error), address: HostPort.join(configuration.listenHost, configuration.listenPort),
                    key: "kubernetes_service.listen_addr")
            }
            if configuration.listenPort == 0, let port = server?.localAddress?.port,
                let host = try? HostPort.parse(configuration.advertisedAddr, defaultPort: 3027, key: "advertised address").host
            {
                advertised.value.withLock { $0 = HostPort.join(host, port) }
            }
            logger.info(
                "Kubernetes service is listening",
                metadata: ["tp.listen": "\(HostPort.join(configuration.listenHost, configuration.listenPort))",
                    "tp.kube_clusters": "\(configuration.clusters.map(\.name).joined(separator: ","))"])
        }
        let agent = configuration.tunnel.map { target in
            ReverseTunnelAgent(
                configuration: ReverseTunnelAgent.Configuration(target: target, services: [.kube: { channel, _ in adopt(channel) }]),
                logger: logger)
        }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await cache.run() }
                if let commandLabels {
                    // The first results go into the first heartbeat.
                    await commandLabels.runOnce()
                    group.addTask { await commandLabels.run(startNow: false) }
                }
                group.addTask { await heartbeats() }
                if let agent { group.addTask { await agent.run() } }
                group.addTask {
                    await withDiscardingTaskGroup { connections in
                        for await (connection, handoff) in incoming {
                            connections.addTask { await sessions.serve(connection, handoff: handoff) }
                        }
                    }
                }
                group.addTask {
                    // Ends the stream (and so the connections' group) on shutdown.
                    await withTaskCancellationHandler {
                        while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
                    } onCancel: {
                        continuation.finish()
                    }
                }
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
                    try await auth.heartbeat(kube: record)
                } catch {
                    failed = true
                    logger.warning("kube_server heartbeat failed: \(error)", metadata: ["tp.kube_cluster": "\(record.name)"])
                }
            }
            if first && !failed {
                first = false
                onFirstHeartbeat()
            }
            do { try await Task.sleep(for: failed ? .seconds(1) : configuration.heartbeatInterval) } catch { return }
        }
    }

    /// Mutual TLS with the proxy: this host's `Kube` identity; the client must present a
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
            throw TeleportError.badParameter("the Kubernetes service's identity cannot be loaded (data_dir/keys/kube.*): \(error)")
        }
    }
}

/// The Kubernetes service's registered address, set once the listener is bound.
final class AdvertisedAddress: Sendable {
    let value: Mutex<String>

    init(_ address: String) { value = Mutex(address) }
}
