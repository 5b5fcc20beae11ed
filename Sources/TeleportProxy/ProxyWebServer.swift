import Foundation
public import Logging
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import NIOCore
import NIOPosix
import NIOSSL
import TeleportCrypto
import TeleportHTTPListener
import X509
import Synchronization
public import ServiceLifecycle
public import TeleportAPI
public import TeleportAuthClient
public import TeleportSSH
public import TeleportTunnel

/// The proxy's HTTPS listener (`proxy_service.web_listen_addr`, 3080): the entry point for `tsh`
/// and browsers. Serves `/webapi/ping`, `tsh login`'s `POST /webapi/ssh/certs`, and the signup and
/// reset pages (`/web/newuser/:token`, `/web/reset/:token`), and the web UI's sessions and pages
/// (``WebSessionRoutes``).
public struct ProxyWebServer: Service, CustomStringConvertible {
    /// What `/webapi/ping` reports.
    public struct Settings: Sendable {
        public var authType: String
        public var secondFactor: String
        public var publicAddr: String
        public var sshListenAddr: String
        /// Where the TLS tunnel (`tsh proxy ssh`) audits refused requests.
        public var audit: SSHAudit?
        /// The cluster's roles as of now, by name (the proxy's certificate cache follows them):
        /// `tsh ls` lists only the nodes a user's roles reach.
        public var roles: @Sendable (_ names: [String]) -> [Role] = { _ in [] }
        /// The cluster's locks in force now (the proxy's certificate cache follows them):
        /// `GET /webapi/locks/mine` answers a refused user's own locks from them.
        public var locks: @Sendable () async -> [Lock] = { [] }
        /// The web port's routes by ALPN protocol (see ``ALPNRouterChannel``): `teleport-auth` to the
        /// auth service, `teleport-reversetunnel` to the reverse tunnel server; databases and
        /// Kubernetes register theirs. Protocols with no route are HTTPS (and `tsh proxy ssh`).
        public var alpnRoutes: [String: ALPNRoute] = [:]
        /// Whether reverse tunnels share the web port (`tunnel_listen_addr` equal to
        /// `web_listen_addr`, or `proxy_listener_mode: multiplex`); `/webapi/ping` reports it
        /// as `proxy.tls_routing_enabled`.
        public var multiplexed = false
        /// The address agents dial for their reverse tunnel (`/webapi/ping`'s
        /// `proxy.tunnel_public_addr`): the web address when ``multiplexed``.
        public var tunnelPublicAddr = ""
        /// `proxy_service.tunnel_listen_addr` (the web address when ``multiplexed``), reported as
        /// `proxy.ssh.tunnel_listen_addr`: agents take its port when no public tunnel address is known.
        public var tunnelListenAddr = ""
        /// How the TLS tunnel (`tsh proxy ssh`) reaches nodes: direct TCP or their reverse tunnel.
        public var dialer: any AgentDialer = NodeDialer(tunnels: nil)
        /// How leaf clusters are reached (trusted clusters; nil: none).
        public var clusterRouter: ClusterRouter?
        /// `teleport.connection_limits.max_connections` on the web port (nil: no limit).
        public var limiter: ConnectionLimiter?
        /// `proxy_service.postgres_listen_addr` (empty: no PostgreSQL listener), reported as
        /// `proxy.db.postgres_listen_addr` for `tsh db`.
        public var postgresListenAddr = ""
        /// `proxy_service.mysql_listen_addr` (empty: no MySQL listener), reported as
        /// `proxy.db.mysql_listen_addr`.
        public var mysqlListenAddr = ""
        /// Creates settings.
        public init(authType: String, secondFactor: String, publicAddr: String, sshListenAddr: String) {
            self.authType = authType
            self.secondFactor = secondFactor
            self.publicAddr = publicAddr
            self.sshListenAddr = sshListenAddr
        }

        /// Serves connections offering `alpnProtocol` with `route` (the last registration wins).
        public mutating func route(_ alpnProtocol: String, to route: ALPNRoute) {
            alpnRoutes[alpnProtocol] = route
        }

        /// Routes by TLS server name, for clients that cannot choose an ALPN value: a connection
        /// whose SNI starts with `prefix` (case-insensitive; the longest registered prefix wins)
        /// and whose ALPN matched no route is served with `route`.
        public mutating func route(serverNamePrefix prefix: String, to route: ALPNRoute) {
            serverNameRoutes[prefix] = route
        }

        /// The routes by server-name prefix (see ``route(serverNamePrefix:to:)``).
        public var serverNameRoutes: [String: ALPNRoute] = [:]
        /// The proxy's host identity towards application services (nil: no application access).
        public var appIdentity: ClientIdentity?
        /// Registers a listener for the proxy's later identities (a CA rotation renews it or
        /// changes the CAs it trusts): the app and Kubernetes paths then present and trust the new one.
        public var onIdentityChange: (@Sendable (@escaping @Sendable (ClientIdentity) throws -> Void) -> Void)?
        /// The reverse tunnels Kubernetes services behind NAT keep (nil: only direct ones).
        public var kubeTunnels: ReverseTunnelServer?
        /// `proxy_service.kube_listen_addr` (nil: kubectl only on the web port).
        public var kubeListenAddr: (host: String, port: Int)?
    }

    let auth: AuthClient
    let host: String
    let port: Int
    let certificatePEM: String
    let keyPEM: String
    let settings: Settings
    let logger: Logger
    let onListening: @Sendable () async -> Void
    /// App session cookies checked lately: shared by the app origin and the logout route.
    let appSessionCache = AppSessionCache()
    /// How long a connection may take to complete the TLS handshake and send a request head (or,
    /// for the tunnel of `tsh proxy ssh`, its request line), and stay idle between requests,
    /// before the server closes it. A request being answered is not cut, nor an open tunnel.
    public var idleTimeout: Duration = Self.defaultIdleTimeout
    /// The default ``idleTimeout``.
    public static let defaultIdleTimeout: Duration = .seconds(10)

    /// Names the service without its fields: they hold the HTTPS private key.
    public var description: String { "ProxyWebServer(\(host):\(port))" }

    /// Creates the server with its HTTPS certificate chain and key (PEM).
    public init(
        auth: AuthClient, host: String, port: Int, certificatePEM: String, keyPEM: String, settings: Settings,
        logger: Logger, onListening: @escaping @Sendable () async -> Void
    ) {
        self.auth = auth
        self.host = host
        self.port = port
        self.certificatePEM = certificatePEM
        self.keyPEM = keyPEM
        self.settings = settings
        self.logger = logger
        self.onListening = onListening
    }

    /// Whether the first certificate of `pem` is self-signed (its issuer is its subject).
    static func isSelfSigned(_ pem: String) -> Bool {
        guard let first = (try? Certificate.bundleFromPEM(pem))?.first else { return false }
        return first.issuer == first.subject
    }

    public func run() async throws {
        guard let clusterName = try await waitForAuth() else { return }
        let router = makeRouter(clusterName: clusterName)
        var tls: TLSConfiguration
        var userCAPEMs: [String] = []
        do {
            tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)))
            // tsh presents its user certificate for the calls that need a logged-in user
            // (/webapi/nodes); browsers and tsh login present none. Only the user CA is trusted.
            userCAPEMs = try await userCATLSCertificates()
            tls.trustRoots = .certificates(try userCAPEMs.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) })
            tls.certificateVerification = .optionalVerification
            // `tsh proxy ssh` asks for the tunnel protocol (see ProxyTunnel); browsers for HTTP/1.1.
            tls.applicationProtocols = ["http/1.1", ProxyTunnel.alpnProtocol]
        } catch let error as TeleportError {
            throw error
        } catch {
            throw TeleportError.badParameter("the proxy's HTTPS key pair cannot be loaded: \(error) (check proxy_service.https_keypairs)")
        }
        let onListening = self.onListening
        let opener = TunnelOpener(
            resolver: NodeResolver(auth: auth, clusterName: clusterName), dialer: settings.dialer, clusterName: clusterName, audit: settings.audit,
            requestLineTimeout: TimeAmount(idleTimeout))
        let webContext: NIOSSLContext
        let userCAs = TrustedUserCAs(base: tls)
        do {
            webContext = try NIOSSLContext(configuration: tls)
            try userCAs.start(webContext, roots: try await userCATLSCertificates())
        } catch {
            throw TeleportError.badParameter("the proxy's HTTPS key pair cannot be loaded: \(error) (check proxy_service.https_keypairs)")
        }
        let http = HTTP1Channel.Configuration(idleTimeout: TimeAmount(idleTimeout))
        let settings = self.settings
        let deadline = TimeAmount(idleTimeout)
        let sshPort = (try? HostPort.parse(settings.sshListenAddr, defaultPort: 3023, key: "proxy_service.listen_addr").port) ?? 3023
        if settings.multiplexed {
            logger.debug("Setup Proxy: Reverse tunnel proxy and web proxy listen on the same port, multiplexing is on.")
        }
        // The web terminal's WebSocket (`/webapi/terminal`) is upgraded by the same router.
        let webSocketResponder = router.buildResponder()
        let webSocket = HTTP1WebSocketUpgradeChannel.Configuration(
            http1: http, ws: WebSocketServerConfiguration(maxFrameSize: 1 << 16, autoPing: .enabled(timePeriod: .seconds(30))))
        // Application access: a ClientHello naming an app's public address (`APP.<public host>`
        // or its own public_addr) is served by ``AppProxy`` (the user's app certificate, then the
        // application service).
        let appProxy = try settings.appIdentity.map { identity in
            try AppProxy(
                auth: auth, clusterName: clusterName, identity: identity, publicAddr: settings.publicAddr, roles: settings.roles,
                audit: settings.audit, logger: logger, sessionCache: appSessionCache)
        }
        // The app path trusts the user CA as the web context does (rebuilt with it).
        let appContexts: TLSContextSource
        do {
            appContexts = try userCAs.follow { [tls] roots in
                var appTLS = tls
                appTLS.applicationProtocols = ["http/1.1"]
                appTLS.trustRoots = .certificates(try roots.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) })
                return try NIOSSLContext(configuration: appTLS)
            }
        } catch {
            throw TeleportError.badParameter("the proxy's HTTPS key pair cannot be loaded: \(error) (check proxy_service.https_keypairs)")
        }
        // Kubernetes access: kubectl names AuthAPI.kubeProxyServerName (or offers ALPN
        // teleport-kube); the proxy's host certificate answers, then ``KubeProxy`` checks and relays.
        var alpnRoutes = settings.alpnRoutes
        var serverNameRoutes = settings.serverNameRoutes
        var kubeListener: (any Channel)?
        if let identity = settings.appIdentity {
            let kubeProxy = try KubeProxy(
                auth: auth, clusterName: clusterName, identity: identity, roles: settings.roles, audit: settings.audit,
                tunnels: settings.kubeTunnels, logger: logger)
            // kubectl meets the proxy's current identity and the user CA's current certificates.
            let proxyIdentity = Mutex(identity)
            let kubeFront = try userCAs.follow { roots in try KubeProxy.frontContext(identity: proxyIdentity.withLock { $0 }, userCAs: roots) }
            settings.onIdentityChange?({ renewed in
                try kubeProxy.renew(identity: renewed)
                try appProxy?.renew(identity: renewed)
                proxyIdentity.withLock { $0 = renewed }
                try userCAs.rebuildFollowers()
            })
            let kubeRoute = ALPNRoute.terminateCurrent(kubeFront, { channel in kubeProxy.takeOver(channel) })
            alpnRoutes[AuthAPI.kubeALPNProtocol] = kubeRoute
            serverNameRoutes[AuthAPI.kubeProxyServerNamePrefix] = kubeRoute
            if let listen = settings.kubeListenAddr {
                // kubectl's own port: TLS with the same context, then the same gate.
                do {
                    kubeListener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                        .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                        .childChannelInitializer { channel in
                            countConnection("proxy kube", channel)
                            return channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: kubeFront.current))
                                try channel.pipeline.syncOperations.addHandler(KubeFrontGate(proxy: kubeProxy))
                            }
                        }
                        .bindInheritable(host: listen.host, port: listen.port)
                } catch {
                    throw ListenError.describe(
                        error, errno: listenErrno(error), address: HostPort.join(listen.host, listen.port), key: "proxy_service.kube_listen_addr")
                }
                logger.info("Kubernetes proxy is listening", metadata: ["tp.listen": "\(HostPort.join(listen.host, listen.port))"])
            }
        }
        let routes = alpnRoutes
        let nameRoutes = serverNameRoutes
        // The socket comes from ListenerSockets (a graceful restart hands it on).
        let listener = HTTPListener(host: host, port: port, service: "proxy web", logger: logger)
        let server = listener.builder { responder in
            var router = ALPNRouterChannel(
                base: TunnelingChildChannel(
                    base: HTTP1WebSocketUpgradeChannel(responder: responder, webSocketResponder: webSocketResponder, configuration: webSocket),
                    opener: opener),
                webContext: webContext, routes: routes, deadline: deadline, httpsAddress: settings.publicAddr,
                sshPort: sshPort, limiter: settings.limiter, serverNameRoutes: nameRoutes)
            router.webContextSource = userCAs.source
            if let appProxy {
                router.serverNameMatcher = { name in
                    appProxy.serves(serverName: name) ? .terminateCurrent(appContexts, { channel in appProxy.takeOver(channel, serverName: name) }) : nil
                }
            }
            return router
        }
        let app = Application(
            router: router, server: server,
            configuration: .init(address: listener.applicationAddress, serverName: "teleport-proxy"), logger: logger)
        do {
            // The list of apps (for apps with their own public address) is refreshed beside the server.
            try await withThrowingTaskGroup(of: Void.self) { group in
                if let appProxy { group.addTask { await appProxy.refreshLoop() } }
                // Trust read per handshake: the user CA's certificates (both during a rotation).
                group.addTask { [logger] in
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(2))
                        do {
                            try userCAs.update(roots: try await userCATLSCertificates())
                        } catch {
                            logger.debug("cannot refresh the user CA", metadata: ["tp.error": "\(error)"])
                        }
                    }
                }
                group.addTask { try await listener.run({ try await app.run() }, onListening: onListening) }
                defer { group.cancelAll() }
                // The server ends first (shutdown or error); the refresh loop runs until cancelled.
                while let _ = try await group.next() {
                    group.cancelAll()
                }
            }
            try? await kubeListener?.close()
        } catch let error as IOError {
            throw ListenError.describe(error, errno: error.errnoCode, address: HostPort.join(host, port), key: "proxy_service.web_listen_addr")
        } catch let error as ListenSocketError {
            throw ListenError.describe(error, errno: error.errno, address: HostPort.join(host, port), key: "proxy_service.web_listen_addr")
        }
    }
}

extension ProxyWebServer {
    /// The user CA's X.509 certificates, PEM, from the auth service.
    func userCATLSCertificates() async throws -> [String] {
        guard case .certAuthority(let ca) = try await auth.resource(kind: CertAuthority.kind, name: CertAuthority.CAType.user.rawValue)
        else { throw TeleportError.internalError("the auth service sent another kind for cert_authority/user") }
        return ca.trustedKeys.tls.map(\.cert)
    }

    /// Asks the auth service for the cluster name, retrying with backoff until it answers; `nil`
    /// when shutdown came first.
    func waitForAuth() async throws -> String? {
        var delay = Duration.milliseconds(200)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                return try await auth.ping().clusterName
            } catch let error as TeleportError where error.code == .connectionProblem {
                logger.debug("waiting for the auth service", metadata: ["tp.error": "\(error.message)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
        return nil
    }
}

extension ProxyWebServer {
    /// The routes: ping, the landing page, login, and the signup and reset pages.
    func makeRouter(clusterName: String) -> Router<ProxyRequestContext> {
        let router = Router(context: ProxyRequestContext.self)
        // First, so that it covers every route and the 404s: security headers, foreign origins refused.
        router.add(middleware: WebSecurityMiddleware(logger: logger))
        let settings = self.settings
        let preferences = AuthPreferenceCache()
        let auth = self.auth
        router.get("webapi/ping") { _, _ -> Response in
            // How users log in (type, local_auth, connectors) comes from the auth service, kept 5 s.
            let preference = await preferences.get { try await auth.authPreference() }
            var authBlock: [String: JSONValue] = [
                "type": .string(preference?.type ?? settings.authType),
                "second_factor": .string(preference?.secondFactor ?? settings.secondFactor),
                "local_auth": .bool(preference?.localAuth ?? true),
                "connectors": .array(
                    (preference?.connectors ?? []).map { .object(["name": .string($0.name), "kind": .string($0.kind), "display": .string($0.display)]) }),
            ]
            if let name = preference?.connectorName, !name.isEmpty { authBlock["connector_name"] = .string(name) }
            let body: [String: JSONValue] = [
                "cluster_name": .string(clusterName),
                "server_version": .string(TeleportVersion.version),
                "auth": .object(authBlock),
                "proxy": .object([
                    "ssh": .object([
                        "listen_addr": .string(settings.sshListenAddr), "public_addr": .string(settings.publicAddr),
                        "tunnel_listen_addr": .string(settings.tunnelListenAddr),
                    ]),
                    "tunnel_public_addr": .string(settings.tunnelPublicAddr),
                    "tls_routing_enabled": .bool(settings.multiplexed),
                    // kubectl reaches Kubernetes on the web port (by SNI), and on kube_listen_addr when set.
                    "kube": .object([
                        "enabled": true,
                        "listen_addr": .string(settings.kubeListenAddr.map { HostPort.join($0.host, $0.port) } ?? ""),
                    ]),
                    "db": .object([
                        "postgres_listen_addr": .string(settings.postgresListenAddr), "mysql_listen_addr": .string(settings.mysqlListenAddr),
                    ]),
                ]),
            ]
            return WebResponse.json((try? ResourceCodec.json(body)) ?? Data())
        }
        router.get("/") { _, _ -> Response in
            let html = "<!doctype html><title>Teleport</title><h1>Teleport proxy for \(HTMLText.escape(clusterName))</h1>"
                + "<p><a href=\"/web/login\">Sign in to the web UI</a></p>"
            return WebResponse.html(html, status: .ok)
        }
        LoginRoute(auth: auth, logger: logger).register(on: router)
        TrustedClusterRoute(auth: auth, logger: logger).register(on: router)
        ClustersRoute(auth: auth, clusterName: clusterName, roles: settings.roles).register(on: router)
        if let clusterRouter = settings.clusterRouter {
            LeafNodesRoute(router: clusterRouter).register(on: router)
            WebLeafRoutes(auth: auth, clusterName: clusterName, router: clusterRouter, certificates: WebLeafCertificates()).register(on: router)
        }
        SSORoutes(auth: auth, logger: logger).register(on: router)
        let appSessions = appSessionCache
        WebSessionRoutes(auth: auth, clusterName: clusterName, logger: logger, onLogout: { appSessions.forget(user: $0) }).register(on: router)
        let nodes = NodesRoute(auth: auth, clusterName: clusterName, roles: settings.roles)
        nodes.register(on: router)
        nodes.registerHostKeys(on: router)
        nodes.registerRecordings(on: router)
        WebRecordingsRoutes(auth: auth, clusterName: clusterName, logger: logger).register(on: router)
        XtermAssets().register(on: router)
        let sshAddress: (host: String, port: Int) =
            (try? HostPort.parse(settings.sshListenAddr, defaultPort: 3023, key: "proxy_service.listen_addr")) ?? ("127.0.0.1", 3023)
        WebTerminalRoute(
            auth: auth, clusterName: clusterName, sshAddress: (sshAddress.host, sshAddress.port),
            resolver: NodeResolver(auth: auth, clusterName: clusterName), roles: settings.roles, logger: logger,
            clusterRouter: settings.clusterRouter
        ).register(on: router)
        WebTerminalPages(gate: WebSessionGate(auth: auth, logger: logger)).register(on: router, clusterName: clusterName)
        MyLocksRoute(clusterName: clusterName, locks: settings.locks).register(on: router)
        DatabasesRoute(auth: auth, clusterName: clusterName, roles: settings.roles, logger: logger).register(on: router)
        AppsRoute(auth: auth, clusterName: clusterName, roles: settings.roles, logger: logger).register(on: router)
        KubeRoute(auth: auth, clusterName: clusterName, roles: settings.roles).register(on: router)
        AppLaunchRoute(auth: auth, clusterName: clusterName, publicAddr: settings.publicAddr, roles: settings.roles, logger: logger)
            .register(on: router)
        ManagementRoutes(auth: auth, clusterName: clusterName, logger: logger).register(on: router)
        AccountRoutes(auth: auth, clusterName: clusterName, logger: logger).register(on: router)
        UserTokenRoutes(
            auth: auth, publicAddr: settings.publicAddr, selfSignedCertificate: Self.isSelfSigned(certificatePEM), logger: logger
        ).register(on: router)
        return router
    }
}

/// The web port's TLS context with the user CA's trusted certificates as client roots, rebuilt
/// when they change (a rotation's `init` adds the new CA, `standby` drops the old one).
final class TrustedUserCAs: Sendable {
    let base: TLSConfiguration
    private let roots = Mutex<[String]>([])
    private let box = Mutex<TLSContextSource?>(nil)
    private let followers = Mutex<[(TLSContextSource, @Sendable ([String]) throws -> NIOSSLContext)]>([])

    init(base: TLSConfiguration) {
        self.base = base
    }

    var source: TLSContextSource? { box.withLock { $0 } }

    func start(_ context: NIOSSLContext, roots current: [String]) throws {
        roots.withLock { $0 = current }
        box.withLock { $0 = TLSContextSource(context) }
    }

    func update(roots current: [String]) throws {
        guard roots.withLock({ $0 }) != current else { return }
        var tls = base
        tls.trustRoots = .certificates(try current.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) })
        let context = try NIOSSLContext(configuration: tls)
        source?.set(context)
        roots.withLock { $0 = current }
        try rebuildFollowers()
    }

    /// A context built from the user CA's certificates by `build`, built again when they change
    /// (and by ``rebuildFollowers()``, when something else `build` reads changed).
    func follow(_ build: @escaping @Sendable ([String]) throws -> NIOSSLContext) throws -> TLSContextSource {
        let source = TLSContextSource(try build(roots.withLock { $0 }))
        followers.withLock { $0.append((source, build)) }
        return source
    }

    /// Builds every follower's context again from the current certificates.
    func rebuildFollowers() throws {
        let current = roots.withLock { $0 }
        for (source, build) in followers.withLock({ $0 }) { source.set(try build(current)) }
    }
}
