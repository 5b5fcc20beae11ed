public import Foundation
public import Logging
import Crypto
import X509
import Metrics
import ServiceLifecycle
import UnixSignals
public import TeleportAPI
import TeleportAuthClient
import TeleportApp
import TeleportKube
import TeleportAuthServer
import TeleportBackend
import TeleportBackendEtcd
import TeleportBackendPostgres
import TeleportBackendSQLite
import TeleportCrypto
import TeleportDatabase
import TeleportEvents
import TeleportRecording
import TeleportNode
import TeleportProxy
import TeleportServices
import TeleportSSH
import TeleportTunnel
import NIOCore

/// `teleport start`: opens the data directory, starts the enabled services in dependency order
/// (backend, audit, auth, proxy, node, diagnostics) as one `ServiceGroup`, and acts on signals
/// (``GracefulRestart``): SIGHUP restarts gracefully, SIGUSR2 forks a second process, SIGQUIT
/// drains and stops, SIGTERM/SIGINT stop at once, SIGUSR1 writes a diagnostic dump to the log.
public enum TeleportProcess {
    /// Runs the daemon until a signal stops it.
    public static func run(config: DaemonConfig, logger: Logger) async throws {
        // Trapped before anything starts (session processes start with default dispositions).
        let signals = await UnixSignalsSequence(trapping: .sighup, .sigusr1, .sigusr2, .sigquit, .sigterm, .sigint)
        // A process started by a graceful restart: the descriptors its parent handed over.
        let inherited = InheritedDescriptors.take()
        for warning in config.file.warnings { logger.warning("\(warning)") }
        try OutboundProxyLog.check(config, localAuthAddress: config.runAuth ? localAuthAddress(config.file.auth.listenAddr) : nil, logger: logger)
        let dataDir = try DataDirectory(url: config.dataDir, inheritedLock: inherited.lock)
        try ListenPreflight.check(config)
        let pidFile = try PIDFile(path: config.pidFile)
        defer { pidFile?.remove() }

        let clock = SystemClock()
        let registry = TeleportMetrics()
        MetricsBootstrap.once(registry)
        registry.set(.buildInfo, ["version": TeleportVersion.version], to: 1)

        var components = Set<String>()
        if config.runAuth { components.insert("auth") }
        if config.runProxy { components.insert("proxy") }
        if config.runNode { components.insert("node") }
        if config.runDb { components.insert("db") }
        if config.runApp { components.insert("app") }
        if config.runKube { components.insert("kube") }
        let readiness = Readiness(expected: components)
        var services: [any Service] = []
        let hostUUID = try dataDir.hostUUID()

        var backendToClose: (any Backend)?
        do {
            try await assemble(
                config: config, dataDir: dataDir, clock: clock, readiness: readiness, registry: registry, hostUUID: hostUUID,
                restarted: inherited.ready != nil, logger: logger, services: &services, backend: &backendToClose)
        } catch {
            try? await backendToClose?.close()
            throw error
        }
        services.append(
            ReadinessLogger(
                readiness: readiness, logger: logger, roles: config.roleNames, dataDir: config.dataDir.path, readyDescriptor: inherited.ready))
        // Signals are the controller's (SIGTERM closes connections first); the group stops when it says.
        var groupConfiguration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) }, gracefulShutdownSignals: [], cancellationSignals: [], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(60)
        let group = ServiceGroup(configuration: groupConfiguration)
        let controller = RestartController(
            group: group, readiness: readiness, lock: dataDir.lockDescriptor,
            shutdownDelay: .milliseconds(Int64(config.file.teleport.shutdownDelay * 1000)),
            services: services.map { "\($0)" }, pidFile: pidFile, logger: logger)
        do {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask {
                    for await signal in signals {
                        guard let known = GracefulRestart.Signal(signal) else { continue }
                        await controller.feed(.signal(known))
                    }
                }
                defer { controller.finish() }
                try await group.run()
                tasks.cancelAll()
            }
        } catch let error as TeleportError {
            try? await backendToClose?.close()
            throw error
        } catch let error as ServiceGroupError {
            try? await backendToClose?.close()
            throw TeleportError.internalError("teleport stopped: \(error)")
        } catch {
            try? await backendToClose?.close()
            throw error
        }
        try? await backendToClose?.close()
        logger.info("teleport stopped")
    }

    /// `config` with the auth servers of `authservers.json` after the configured ones (a proxy or
    /// node that talks to auth servers directly).
    static func withCachedAuthServers(_ config: DaemonConfig, dataDir: DataDirectory, logger: Logger) -> DaemonConfig {
        guard !config.runAuth, !config.authServers.isEmpty else { return config }
        let cached = AuthServersCache.load(dataDir: dataDir.url)
        if let problem = cached.problem { logger.warning("\(problem)") }
        var merged = config
        merged.authServers = AuthServersCache.merge(configured: config.authServers, cached: cached.addresses)
        return merged
    }

    /// Creates the services of the enabled roles, in dependency order.
    static func assemble(
        config: DaemonConfig, dataDir: DataDirectory, clock: SystemClock, readiness: Readiness,
        registry: TeleportMetrics, hostUUID: String, restarted: Bool = false, logger: Logger, services: inout [any Service],
        backend backendToClose: inout (any Backend)?
    ) async throws {
        let keys = dataDir.keysDirectory
        // A host also tries the auth servers it learned from the cluster (authservers.json) after
        // the configured ones.
        let config = withCachedAuthServers(config, dataDir: dataDir, logger: logger)
        if config.runAuth {
            let (backend, auth) = try await openAuth(config: config, dataDir: dataDir, clock: clock, metrics: registry, logger: logger)
            backendToClose = backend
            let auditLogs = AuditLogs.postgresLogs(of: auth.audit)
            if !auditLogs.isEmpty { services.append(AuditLogCloser(logs: auditLogs)) }
            if let sqlite = backend as? SQLiteBackend { services.append(SweeperService(backend: sqlite)) }
            if let postgres = backend as? PostgresBackend { services.append(PostgresMaintenanceService(backend: postgres)) }
            var health = BackendHealthService(backend: backend, readiness: readiness, logger: logger.with("backend"))
            if let postgres = backend as? PostgresBackend {
                health.writeCheck = { (try? await postgres.writeProblem()) ?? nil }
            }
            services.append(health)
            services.append(
                AuthServerAnnouncer(
                    auth: auth, entry: .init(uuid: hostUUID, hostname: config.nodeName, addr: AuthServerAnnouncer.address(config)),
                    logger: logger.with("auth")))
            let authAddress = try HostPort.parse(config.file.auth.listenAddr, defaultPort: 3025, key: "auth_service.listen_addr")
            let apiServer = try await AuthAPIServer.make(
                auth: auth, host: authAddress.host, port: authAddress.port, hostID: hostUUID,
                extraNames: config.file.auth.publicAddrs.map { (try? HostPort.parse($0, defaultPort: 3025, key: "public_addr").host) ?? $0 }
                    + [config.nodeName, config.advertiseIP ?? ""],
                logger: logger.with("auth"), onListening: { readiness.markReady("auth") })
            services.append(apiServer)
            services.append(AuditCheckpointService(auth: auth, logger: logger.with("audit")))
            services.append(RotationService(auth: auth, interval: config.rotationCheckInterval, logger: logger.with("auth:rotation")))
            services.append(RemoteClusterStatusService(auth: auth, logger: logger.with("auth:trust")))
            let adminRenewal = LocalAdminRenewal(
                auth: auth, keys: keys, hostUUID: hostUUID, interval: config.rotationCheckInterval, logger: logger.with("auth:rotation"))
            auth.onRotation { try? await adminRenewal.check() }
            services.append(adminRenewal)
            let roles: [SystemRole] = [.admin, .proxy, .node] + (config.runDb ? [.db] : []) + (config.runApp ? [.app] : [])
                + (config.runKube ? [.kube] : [])
            // A process started by a graceful restart keeps the identities on disk: a new host
            // certificate would make the draining process's (still serving) no longer current.
            if !restarted || roles.contains(where: { (try? LocalIdentities.load(keys: keys, role: $0)) == nil }) {
                try await LocalIdentities.write(auth: auth, hostUUID: hostUUID, keys: keys, roles: roles)
            }
            if config.runNode || config.runProxy {
                let hostKey = try SSHHostKey.loadOrCreate(keys: keys)
                try await auth.recordHostKey(hostID: hostUUID, nodeName: config.nodeName, publicKey: hostKey.publicKey.authorizedKeyLine())
            }
            logger.info("auth service is starting", metadata: ["tp.listen": "\(config.file.auth.listenAddr)", "tp.cluster": "\(auth.clusterName)"])
        }
        let authAddress = config.runAuth ? localAuthAddress(config.file.auth.listenAddr) : config.authServers.first
        if config.runProxy {
            guard let authAddress else { throw missingAuthServer("proxy") }
            let identity = config.runAuth
                ? try LocalIdentities.load(keys: keys, role: .proxy)
                : try await LocalIdentities.loadOrJoin(
                    keys: keys, role: .proxy, config: config, authServer: authAddress, hostUUID: hostUUID, logger: logger)
            let client = try AuthClient(address: authAddress, fallbacks: config.runAuth ? [] : config.authServers, identity: identity)
            if !config.runAuth, !config.authServers.isEmpty {
                services.append(AuthServersCacheService(client: client, dataDir: dataDir.url, logger: logger.with("proxy")))
            }
            let web = try HostPort.parse(config.file.proxy.webListenAddr, defaultPort: 3080, key: "proxy_service.web_listen_addr")
            let pair = try ProxyCertificate.load(config: config, keys: keys, clock: clock)
            let publicAddr = proxyPublicAddress(config)
            let queue = AuditQueue(logger: logger.with("proxy:audit"))
            services.append(AuditForwarder(queue: queue, client: client))
            var proxyAudit = SSHAudit(queue: queue, serverID: hostUUID, hostname: config.nodeName, labels: [:], clock: clock)
            (proxyAudit.metrics, proxyAudit.service) = (registry, "proxy")
            var webSettings = ProxyWebServer.Settings(
                authType: config.file.auth.authenticationType, secondFactor: config.file.auth.secondFactor,
                publicAddr: publicAddr, sshListenAddr: config.file.proxy.listenAddr)
            webSettings.audit = proxyAudit
            webSettings.limiter = ConnectionLimits.limiter(config, service: "web", metrics: registry, logger: logger.with("proxy"))
            try wireWebPort(&webSettings, config: config, authAddress: authAddress, publicAddr: publicAddr)
            webSettings.postgresListenAddr = config.file.proxy.postgresListenAddr ?? ""
            webSettings.mysqlListenAddr = config.file.proxy.mysqlListenAddr ?? ""
            webSettings.appIdentity = identity
            let proxyCache = userCertificateCache(client, dataDir: dataDir, role: "proxy", clock: clock, logger: logger)
            webSettings.roles = { names in proxyCache.roles(named: names) }
            webSettings.locks = { await proxyCache.locksInForce() }
            let clusterName = try clusterName(of: identity)
            // Reverse tunnels: nodes behind NAT dial in with their host certificate (mTLS).
            var tunnelConfiguration = ReverseTunnelServer.Configuration(
                clusterName: clusterName,
                tlsContext: try ReverseTunnelServer.serverTLSContext(
                    certificatePEM: identity.certificatePEM, keyPEM: identity.keyPEM, trustedCAPEMs: identity.trustedCAPEMs))
            // CA rotation: the proxy's identity and trusted CAs change without a restart.
            let liveProxy = LiveIdentity(identity)
            let tunnelContexts = TLSContextSource(tunnelConfiguration.tlsContext)
            tunnelConfiguration.contextSource = tunnelContexts
            // Trusted clusters: leaves' proxies also dial in; their host CAs join the trust roots.
            let clusterTrust = ClusterTunnelTrust(localCAPEMs: identity.trustedCAPEMs)
            tunnelConfiguration.clusterTrust = clusterTrust
            liveProxy.onChange { renewed in
                clusterTrust.setLocal(renewed.trustedCAPEMs)
                tunnelContexts.set(
                    try ReverseTunnelServer.serverTLSContext(
                        certificatePEM: renewed.certificatePEM, keyPEM: renewed.keyPEM, trustedCAPEMs: clusterTrust.trustedRootPEMs))
            }
            services.append(
                IdentityRotationService(
                    role: .proxy, keys: keys, client: client, identity: liveProxy, interval: config.rotationCheckInterval,
                    logger: logger.with("proxy:rotation")))
            // The app and Kubernetes paths (built when the web server starts, maybe after a renewal).
            webSettings.onIdentityChange = { listener in
                liveProxy.onChange(listener)
                try? listener(liveProxy.current)
            }
            let tunnelAudit = proxyAudit
            tunnelConfiguration.onRefused = { remote, reason in tunnelAudit.reverseTunnelRefused(remote: remote, reason: reason) }
            tunnelConfiguration.onConnected = { _ in tunnelAudit.reverseTunnelOpened() }
            tunnelConfiguration.onDisconnected = { _ in tunnelAudit.reverseTunnelClosed() }
            tunnelConfiguration.admit = { hostUUID in
                await proxyCache.locksInForce().first { $0.spec.target.node == hostUUID }?.refusal
            }
            let tunnelServer = ReverseTunnelServer(configuration: tunnelConfiguration, logger: logger.with("proxy:tunnel"))
            let dialer = NodeDialer(tunnels: tunnelServer)
            webSettings.kubeTunnels = tunnelServer
            webSettings.kubeListenAddr = try config.file.proxy.kubeListenAddr.map {
                try HostPort.parse($0, defaultPort: 3026, key: "proxy_service.kube_listen_addr")
            }
            webSettings.dialer = dialer
            // One port: agents' tunnels also arrive on the web port (ALPN teleport-reversetunnel);
            // the separate tunnel listener binds unless the web port is the only one.
            webSettings.route(
                TunnelTLS.alpnProtocol,
                to: .terminateCurrent(tunnelContexts, { channel in tunnelServer.adoptAfterHandshake(channel: channel) }))
            let databaseListeners: [(DatabaseServer.DatabaseProtocol, String?, Int)] = [
                (.postgres, config.file.proxy.postgresListenAddr, 5432), (.mysql, config.file.proxy.mysqlListenAddr, 3036),
            ]
            for (databaseProtocol, listen, defaultPort) in databaseListeners {
                let key = "proxy_service.\(databaseProtocol.rawValue)_listen_addr"
                let address = try listen.map { try HostPort.parse($0, defaultPort: defaultPort, key: key) }
                let databaseProxy = try DatabaseProxyService(
                    protocol: databaseProtocol, host: address?.host ?? "", port: address?.port ?? 0, clusterName: clusterName, identity: identity,
                    auth: client, audit: proxyAudit, tunnels: tunnelServer, logger: logger.with("proxy:\(databaseProtocol.rawValue)"))
                // TLS routing: the web port always serves the protocol (ALPN teleport-postgres, teleport-mysql);
                // its own listener only when configured.
                webSettings.route(databaseProtocol.alpnProtocol, to: databaseProxy.alpnRoute)
                liveProxy.onChange { renewed in try databaseProxy.renew(identity: renewed) }
                if address != nil { services.append(databaseProxy) }
            }
            let tunnelListen = try tunnelListener(config)
            services.append(
                ProxyTunnelService(
                    server: tunnelServer, listen: tunnelListen, auth: client, locks: { await proxyCache.locksInForce() },
                    logger: logger.with("proxy:tunnel")))
            services.append(
                ClusterTunnelService(
                    server: tunnelServer, trust: clusterTrust, auth: client,
                    onTrustChange: {
                        let current = liveProxy.current
                        do {
                            tunnelContexts.set(
                                try ReverseTunnelServer.serverTLSContext(
                                    certificatePEM: current.certificatePEM, keyPEM: current.keyPEM, trustedCAPEMs: clusterTrust.trustedRootPEMs))
                        } catch {
                            logger.warning("cannot rebuild the tunnel listener's trust", metadata: ["tp.error": "\(error)"])
                        }
                    }, logger: logger.with("proxy:trust")))
            // Trusted clusters: as a leaf, serve roots' users on the tunnel; as a root, route to leaves.
            var trustAgents = TrustedClusterAgentService(
                auth: client, hostUUID: hostUUID, identity: { liveProxy.current }, keepalive: config.tunnelKeepalive,
                logger: logger.with("proxy:trust"))
            trustAgents.leafService = LeafClusterService(
                auth: client, clusterName: clusterName, dialer: dialer, roles: { proxyCache.roles(named: $0) }, logger: logger.with("proxy:trust"))
            services.append(trustAgents)
            let clusterRouter = ClusterRouter(
                tunnels: tunnelServer, auth: client, clusterName: clusterName, roles: { proxyCache.roles(named: $0) }, logger: logger.with("proxy:trust"))
            webSettings.clusterRouter = clusterRouter
            services.append(
                ProxyWebServer(
                    auth: client, host: web.host, port: web.port, certificatePEM: pair.certificatePEM, keyPEM: pair.keyPEM,
                    settings: webSettings, logger: logger.with("proxy"), onListening: { readiness.markReady("proxy") }))
            // Presence: agents list the proxies to keep a tunnel to each.
            var record = ServerProxy(uuid: hostUUID, hostname: config.nodeName, addr: webSettings.tunnelPublicAddr, publicAddr: publicAddr)
            record.spec.version = TeleportVersion.version
            var heartbeat = ProxyHeartbeat(auth: client, record: record, logger: logger.with("proxy"))
            // Behind a load balancer: no new connections while no auth server answers (/readyz 503).
            heartbeat.onHealth = { problem in readiness.setProblem("proxy", problem) }
            services.append(heartbeat)
            let sshAddress = try HostPort.parse(config.file.proxy.listenAddr, defaultPort: 3023, key: "proxy_service.listen_addr")
            var proxySSH = ProxySSHService(
                host: sshAddress.host, port: sshAddress.port, hostKey: try SSHHostKey.loadOrCreate(keys: keys),
                cache: proxyCache,
                auth: client, clusterName: clusterName,
                audit: proxyAudit, dialer: dialer, logger: logger.with("proxy:ssh"))
            proxySSH.limiter = ConnectionLimits.limiter(config, service: "proxy", metrics: registry, logger: logger.with("proxy:ssh"))
            proxySSH.clusterRouter = clusterRouter
            services.append(proxySSH)
        }
        if config.runNode {
            guard let authAddress else { throw missingAuthServer("node") }
            let identity = config.runAuth
                ? try LocalIdentities.load(keys: keys, role: .node)
                : try await LocalIdentities.loadOrJoin(
                    keys: keys, role: .node, config: config, authServer: authAddress, hostUUID: hostUUID, logger: logger)
            let client = try AuthClient(address: authAddress, fallbacks: config.runAuth ? [] : config.authServers, identity: identity)
            if !config.runAuth, !config.runProxy, !config.authServers.isEmpty {
                services.append(AuthServersCacheService(client: client, dataDir: dataDir.url, logger: logger.with("node")))
            }
            let liveNode = LiveIdentity(identity)
            services.append(
                IdentityRotationService(
                    role: .node, keys: keys, client: client, identity: liveNode, interval: config.rotationCheckInterval,
                    logger: logger.with("node:rotation")))
            let sshAddress = try HostPort.parse(config.file.ssh.listenAddr, defaultPort: 3022, key: "ssh_service.listen_addr")
            let advertised = config.advertiseIP ?? (sshAddress.host == "0.0.0.0" ? "127.0.0.1" : sshAddress.host)
            let clusterName = try clusterName(of: identity)
            // Tunnelled: `proxy_server` is set, or the auth address answers as a proxy.
            let tunnelProxy = config.runAuth ? nil : await tunnelProxyAddress(config, authAddress: authAddress, logger: logger)
            let listens = tunnelProxy == nil || config.file.ssh.listenAddrConfigured
            var node = ServerNode(
                uuid: hostUUID, hostname: config.nodeName, addr: listens ? "\(advertised):\(sshAddress.port)" : "", labels: config.file.ssh.labels)
            node.spec.version = TeleportVersion.version
            node.spec.hostKeyFingerprint = try SSHHostKey.loadOrCreate(keys: keys).publicKey.fingerprintSHA256
            if tunnelProxy != nil { node.spec.useTunnel = true }
            // The cluster's session_recording and audit_failure: this process's own settings, or the
            // auth service's (when it cannot be asked: record, and fail closed).
            let cluster = config.runAuth ? nil : await clusterSettings(client)
            let recording = config.runAuth ? config.file.auth.sessionRecording : cluster?.sessionRecording ?? "node"
            let failure = config.runAuth ? config.file.teleport.storage.auditFailure : cluster?.auditFailure ?? "fail_closed"
            let queue = AuditQueue(whenFull: AuditQueue.WhenFull(rawValue: failure) ?? .failClosed, logger: logger.with("node:audit"))
            services.append(AuditForwarder(queue: queue, client: client))
            if recording == "off" { logger.info("session recording is off (auth_service.session_recording)") }
            let cache = userCertificateCache(
                client, dataDir: dataDir, role: "node", clock: clock, hostNames: [hostUUID, config.nodeName], logger: logger)
            let commandLabels = CommandLabels(
                commands: config.file.ssh.commands.map { .init(name: $0.name, argv: $0.command, period: $0.period) },
                logger: logger.with("labels"))
            let staticLabels = config.file.ssh.labels
            // Roles see the node's labels as tsh ls shows them: static and dynamic (command) ones.
            let access = NodeAccess(cache: cache, nodeName: config.nodeName) {
                staticLabels.merging(commandLabels.current.mapValues(\.result)) { $1 }
            }
            var nodeAudit = SSHAudit(queue: queue, serverID: hostUUID, hostname: config.nodeName, labels: config.file.ssh.labels, clock: clock)
            nodeAudit.metrics = registry
            // A removed node identity stops the node's services; in a process that also runs auth
            // or proxy, those keep running.
            let nodeStop = NodeStop()
            var nodeSSH = NodeSSHService(
                host: sshAddress.host, port: sshAddress.port, hostKey: try SSHHostKey.loadOrCreate(keys: keys), cache: cache,
                settings: SessionSettings(clusterName: clusterName, hostUUID: hostUUID, nodeName: config.nodeName),
                audit: nodeAudit,
                recordings: recording == "off" ? nil : dataDir.recordingUploads, auth: client, access: access,
                logger: logger.with("node:ssh")
            ).stopping(nodeStop).tunnelled(
                to: try tunnelProxy.map { proxy in
                    var target = try nodeTunnelTarget(proxy: proxy, identity: identity, hostUUID: hostUUID, clusterName: clusterName, logger: logger)
                    // CA rotation: each dial presents the current identity and trusts the current CAs.
                    let contexts = TLSContextSource(target.tlsContext)
                    target.contextSource = contexts
                    liveNode.onChange { renewed in
                        contexts.set(
                            try TunnelTLS.clientTLSContext(
                                certificatePEM: renewed.certificatePEM, keyPEM: renewed.keyPEM, trustedCAPEMs: renewed.trustedCAPEMs))
                    }
                    // Several proxies behind one address: a tunnel to each proxy that heartbeats.
                    target.discoverProxies = { try await client.proxies().map(\.name) }
                    if let interval = config.tunnelKeepalive {
                        target.reconnect.keepaliveInterval = interval
                        logger.warning(
                            "\(DaemonConfig.tunnelKeepaliveVariable) is set: the reverse tunnel sends a keepalive every \(interval) (a setting for tests)")
                    }
                    return target
                }, listen: listens)
            nodeSSH.limiter = ConnectionLimits.limiter(config, service: "node", metrics: registry, logger: logger.with("node:ssh"))
            services.append(nodeSSH)
            services.append(
                SessionUploader(directory: dataDir.recordingUploads, auth: client, logger: logger.with("node:upload")).stopping(nodeStop))
            services.append(
                NodeHeartbeat(
                    auth: client, node: node,
                    labels: commandLabels,
                    logger: logger.with("node"), onFirstHeartbeat: { readiness.markReady("node") }
                ).onIdentityRemoved { LocalIdentities.remove(keys: keys, role: .node) }
                    .stopping(nodeStop, endsProcess: !config.runAuth && !config.runProxy))
        }
        if config.runDb {
            guard let authAddress else { throw missingAuthServer("database") }
            try await assembleDatabase(
                config: config, dataDir: dataDir, clock: clock, readiness: readiness, hostUUID: hostUUID, authAddress: authAddress, logger: logger,
                services: &services)
        }
        if config.runApp {
            guard let authAddress else { throw missingAuthServer("application") }
            try await assembleApp(
                config: config, dataDir: dataDir, clock: clock, readiness: readiness, hostUUID: hostUUID, authAddress: authAddress, logger: logger,
                services: &services)
        }
        if config.runKube {
            guard let authAddress else { throw missingAuthServer("Kubernetes") }
            try await assembleKube(
                config: config, dataDir: dataDir, clock: clock, readiness: readiness, hostUUID: hostUUID, authAddress: authAddress, logger: logger,
                services: &services)
        }
        if let diag = config.diagAddr {
            let address = try HostPort.parse(diag, defaultPort: 3000, key: "--diag-addr")
            services.append(
                DiagServer(host: address.host, port: address.port, readiness: readiness, registry: registry, logger: logger.with("diag")))
        }

    }

    /// The database service: its identity (local, or joined with a token as role `Db`), its
    /// audit outbox and the certificate cache that follows the roles.
    static func assembleDatabase(
        config: DaemonConfig, dataDir: DataDirectory, clock: SystemClock, readiness: Readiness, hostUUID: String, authAddress: String,
        logger: Logger, services: inout [any Service]
    ) async throws {
        let keys = dataDir.keysDirectory
        let identity = config.runAuth
            ? try LocalIdentities.load(keys: keys, role: .db)
            : try await LocalIdentities.loadOrJoin(keys: keys, role: .db, config: config, authServer: authAddress, hostUUID: hostUUID, logger: logger)
        let client = try AuthClient(address: authAddress, fallbacks: config.runAuth ? [] : config.authServers, identity: identity)
        let live = followRotation(role: .db, identity: identity, client: client, config: config, keys: keys, logger: logger, services: &services)
        let listen = try HostPort.parse(config.file.db.listenAddr, defaultPort: 3029, key: "db_service.listen_addr")
        let advertisedHost = config.advertiseIP ?? (["0.0.0.0", "::", ""].contains(listen.host) ? "127.0.0.1" : listen.host)
        let databases = config.file.db.databases.map { entry in
            var database = DatabaseService.Database(
                name: entry.name, description: entry.description, protocol: DatabaseServer.DatabaseProtocol(rawValue: entry.protocol) ?? .postgres,
                uri: entry.uri, labels: entry.staticLabels, tlsMode: DatabaseService.Database.TLSMode(rawValue: entry.tlsMode) ?? .verifyFull,
                caCertFile: entry.caCertFile, serverName: entry.serverName)
            database.dynamicLabels = entry.dynamicLabels.map { .init(name: $0.name, argv: $0.command, period: $0.period) }
            return database
        }
        let queue = AuditQueue(logger: logger.with("db:audit"))
        services.append(AuditForwarder(queue: queue, client: client))
        var configuration = DatabaseService.Configuration(
            hostUUID: hostUUID, hostname: config.nodeName, clusterName: try clusterName(of: identity), listenHost: listen.host,
            listenPort: listen.port, advertisedAddr: HostPort.join(advertisedHost, listen.port), identity: identity, databases: databases)
        let serverContexts = try DatabaseService.serverContexts(identity: identity)
        configuration.serverContexts = serverContexts
        live.onChange { renewed in try DatabaseService.renew(serverContexts, identity: renewed) }
        // Behind NAT (teleport.proxy_server, or an auth address that is a proxy) the service keeps a
        // reverse tunnel, as a node does; a process that also runs the node uses the node's host
        // UUID for its own tunnel, so its database service is reached directly.
        if !config.runAuth, !config.runNode, let proxy = await tunnelProxyAddress(config, authAddress: authAddress, logger: logger) {
            var target = try nodeTunnelTarget(proxy: proxy, identity: identity, hostUUID: hostUUID, clusterName: configuration.clusterName, logger: logger)
            if let interval = config.tunnelKeepalive { target.reconnect.keepaliveInterval = interval }
            followRotation(&target, live: live)
            configuration.tunnel = target
            configuration.listens = config.file.db.listenAddrConfigured
        }
        // Each session's statements, uploaded like a node's recordings (from a directory of their own).
        configuration.recordingsDirectory = dataDir.databaseRecordingUploads
        services.append(SessionUploader(directory: dataDir.databaseRecordingUploads, auth: client, logger: logger.with("db:upload")))
        services.append(
            DatabaseService(
                configuration: configuration, auth: client,
                cache: userCertificateCache(client, dataDir: dataDir, role: "db", clock: clock, logger: logger),
                audit: DatabaseAudit(queue: queue, serverID: hostUUID, clock: clock), logger: logger.with("db"),
                onFirstHeartbeat: { readiness.markReady("db") }))
    }

    /// The application service: its identity (local, or joined with a token as role `App`), its
    /// audit outbox and the certificate cache that follows the roles.
    static func assembleApp(
        config: DaemonConfig, dataDir: DataDirectory, clock: SystemClock, readiness: Readiness, hostUUID: String, authAddress: String,
        logger: Logger, services: inout [any Service]
    ) async throws {
        let keys = dataDir.keysDirectory
        let identity = config.runAuth
            ? try LocalIdentities.load(keys: keys, role: .app)
            : try await LocalIdentities.loadOrJoin(keys: keys, role: .app, config: config, authServer: authAddress, hostUUID: hostUUID, logger: logger)
        let client = try AuthClient(address: authAddress, identity: identity)
        let live = followRotation(role: .app, identity: identity, client: client, config: config, keys: keys, logger: logger, services: &services)
        let listen = try HostPort.parse(config.file.app.listenAddr, defaultPort: 3031, key: "app_service.listen_addr")
        let advertisedHost = config.advertiseIP ?? (["0.0.0.0", "::", ""].contains(listen.host) ? "127.0.0.1" : listen.host)
        let apps = config.file.app.apps.map { entry in
            AppService.App(
                name: entry.name, description: entry.description, uri: entry.uri, publicAddr: entry.publicAddr, labels: entry.labels,
                insecureSkipVerify: entry.insecureSkipVerify, redirectHosts: entry.redirect,
                headers: entry.headers.compactMap { $0.count == 2 ? AppService.App.Header(name: $0[0], value: $0[1]) : nil })
        }
        let queue = AuditQueue(logger: logger.with("app:audit"))
        services.append(AuditForwarder(queue: queue, client: client))
        var configuration = AppService.Configuration(
            hostUUID: hostUUID, hostname: config.nodeName, clusterName: try clusterName(of: identity), listenHost: listen.host,
            listenPort: listen.port, advertisedAddr: HostPort.join(advertisedHost, listen.port), identity: identity, apps: apps)
        let serverContexts = try AppService.serverContexts(identity: identity)
        configuration.serverContexts = serverContexts
        live.onChange { renewed in try AppService.renew(serverContexts, identity: renewed) }
        services.append(
            AppService(
                configuration: configuration, auth: client,
                cache: userCertificateCache(client, dataDir: dataDir, role: "app", clock: clock, logger: logger),
                audit: AppAudit(queue: queue, serverID: hostUUID, clock: clock), logger: logger.with("app"),
                onFirstHeartbeat: { readiness.markReady("app") }))
    }

    /// The Kubernetes service: its identity (local, or joined with a token as role `Kube`), its
    /// clusters from the kubeconfig, its audit outbox, recordings and the certificate cache.
    static func assembleKube(
        config: DaemonConfig, dataDir: DataDirectory, clock: SystemClock, readiness: Readiness, hostUUID: String, authAddress: String,
        logger: Logger, services: inout [any Service]
    ) async throws {
        let keys = dataDir.keysDirectory
        let clusters = try KubeConfigFile.load(path: config.file.kube.kubeconfigFile ?? "", clusterName: config.file.kube.kubeClusterName)
        let identity = config.runAuth
            ? try LocalIdentities.load(keys: keys, role: .kube)
            : try await LocalIdentities.loadOrJoin(keys: keys, role: .kube, config: config, authServer: authAddress, hostUUID: hostUUID, logger: logger)
        let client = try AuthClient(address: authAddress, fallbacks: config.runAuth ? [] : config.authServers, identity: identity)
        let live = followRotation(role: .kube, identity: identity, client: client, config: config, keys: keys, logger: logger, services: &services)
        let listen = try HostPort.parse(config.file.kube.listenAddr, defaultPort: 3027, key: "kubernetes_service.listen_addr")
        let advertisedHost = config.advertiseIP ?? (["0.0.0.0", "::", ""].contains(listen.host) ? "127.0.0.1" : listen.host)
        let queue = AuditQueue(logger: logger.with("kube:audit"))
        services.append(AuditForwarder(queue: queue, client: client))
        var configuration = KubeService.Configuration(
            hostUUID: hostUUID, hostname: config.nodeName, clusterName: try clusterName(of: identity), listenHost: listen.host,
            listenPort: listen.port, advertisedAddr: HostPort.join(advertisedHost, listen.port), identity: identity, clusters: clusters,
            labels: config.file.kube.labels)
        configuration.dynamicLabels = config.file.kube.commands.map { .init(name: $0.name, argv: $0.command, period: $0.period) }
        let serverContexts = try KubeService.serverContexts(identity: identity)
        configuration.serverContexts = serverContexts
        live.onChange { renewed in try KubeService.renew(serverContexts, identity: renewed) }
        // Behind NAT (teleport.proxy_server, or an auth address that is a proxy) the service keeps a
        // reverse tunnel, as a node does (not when the process runs a node: that host UUID's tunnel is the node's).
        if !config.runAuth, !config.runNode, !config.runDb, let proxy = await tunnelProxyAddress(config, authAddress: authAddress, logger: logger) {
            var target = try nodeTunnelTarget(proxy: proxy, identity: identity, hostUUID: hostUUID, clusterName: configuration.clusterName, logger: logger)
            if let interval = config.tunnelKeepalive { target.reconnect.keepaliveInterval = interval }
            followRotation(&target, live: live)
            configuration.tunnel = target
            configuration.listens = config.file.kube.listenAddrConfigured
        }
        let directory = dataDir.url.appendingPathComponent("log").appendingPathComponent("upload").appendingPathComponent("kube")
        configuration.recordingsDirectory = directory
        services.append(SessionUploader(directory: directory, auth: client, logger: logger.with("kube:upload")))
        services.append(
            KubeService(
                configuration: configuration, auth: client,
                cache: userCertificateCache(client, dataDir: dataDir, role: "kube", clock: clock, logger: logger),
                audit: KubeAudit(queue: queue, serverID: hostUUID, hostname: config.nodeName, clock: clock), logger: logger.with("kube"),
                onFirstHeartbeat: { readiness.markReady("kube") }))
    }

    /// `proxy_service.tunnel_listen_addr` when it is set and differs from the web address (the
    /// same address means the web port's router serves tunnels); nil binds no tunnel listener.
    static func tunnelListener(_ config: DaemonConfig) throws -> (host: String, port: Int)? {
        guard !config.file.proxy.multiplexed else { return nil }
        return try HostPort.parse(config.file.proxy.tunnelListenAddr, defaultPort: 3024, key: "proxy_service.tunnel_listen_addr")
    }

    /// The proxy web address a node keeps its tunnel through: `teleport.proxy_server`, or the
    /// auth address when it answers `/webapi/ping` as a proxy; nil for a directly dialled node.
    static func tunnelProxyAddress(_ config: DaemonConfig, authAddress: String, logger: Logger) async -> String? {
        if let proxy = config.file.teleport.proxyServer { return proxy }
        guard (try? await ProxyPing.fetch(address: authAddress, timeout: .seconds(2))) != nil else { return nil }
        logger.info("the auth server address is a proxy: this node keeps a reverse tunnel to it", metadata: ["tp.proxy": "\(authAddress)"])
        return authAddress
    }

    /// Where and how the node's reverse tunnel dials: the address comes from the proxy's ping
    /// (`proxy.tunnel_public_addr`, else the proxy host with port 3024), asked before each dial.
    static func nodeTunnelTarget(
        proxy: String, identity: ClientIdentity, hostUUID: String, clusterName: String, logger: Logger
    ) throws -> NodeSSHService.TunnelTarget {
        let web = try HostPort.parse(proxy, defaultPort: 3080, key: "teleport.proxy_server")
        var target = NodeSSHService.TunnelTarget(
            hostUUID: hostUUID, clusterName: clusterName, proxyHost: web.host, proxyPort: 3024,
            tlsContext: try TunnelTLS.clientTLSContext(
                certificatePEM: identity.certificatePEM, keyPEM: identity.keyPEM, trustedCAPEMs: identity.trustedCAPEMs))
        target.resolve = {
            let answer = try await ProxyPing.fetch(address: proxy)
            guard answer.clusterName == clusterName else {
                throw TeleportError.badParameter(
                    "the proxy at \(proxy) serves cluster \(answer.clusterName), not \(clusterName); check teleport.proxy_server")
            }
            return try answer.tunnelAddress(pinged: (web.host, web.port))
        }
        return target
    }

    /// The auth service's ping (its cluster-wide settings), asked for at most 3 seconds.
    static func clusterSettings(_ client: AuthClient) async -> AuthAPI.PingResponse? {
        final class Once: @unchecked Sendable {
            let lock = NSLock()
            var continuation: CheckedContinuation<AuthAPI.PingResponse?, Never>?
            func finish(_ value: AuthAPI.PingResponse?) {
                let waiting: CheckedContinuation<AuthAPI.PingResponse?, Never>? = lock.withLock {
                    defer { continuation = nil }
                    return continuation
                }
                waiting?.resume(returning: value)
            }
        }
        let once = Once()
        return await withCheckedContinuation { continuation in
            once.lock.withLock { once.continuation = continuation }
            Task { once.finish(try? await client.ping()) }
            Task {
                try? await Task.sleep(for: .seconds(3))
                once.finish(nil)
            }
        }
    }

    /// The cluster name in a host identity's certificate (known before the auth service answers).
    static func clusterName(of identity: ClientIdentity) throws -> String {
        try X509Identity(certificate: try Certificate.fromPEM(identity.certificatePEM)).clusterName
    }

    /// The certificate-bound key cache of a proxy or node, kept in `data_dir/cache/`.
    static func userCertificateCache(
        _ client: AuthClient, dataDir: DataDirectory, role: String, clock: any WallClock, hostNames: [String] = [], logger: Logger
    ) -> UserCertificateCache {
        UserCertificateCache(
            file: dataDir.url.appendingPathComponent("cache").appendingPathComponent("usercerts-\(role).json"), clock: clock,
            hostNames: hostNames,
            fetchChanges: { cursor, wait in try await client.userCertificateChanges(after: cursor, wait: wait) },
            fetchOne: { fingerprint in try await client.userCertificate(fingerprintHex: fingerprint) },
            logger: logger.with("\(role):certs"))
    }

    /// Authentication settings from `auth_service.authentication` and the proxy's public address.
    static func authSettings(_ config: DaemonConfig, metrics: TeleportMetrics? = nil) -> AuthSettings {
        var settings = AuthSettings(secondFactor: config.file.auth.secondFactor, proxyPublicAddr: config.runProxy ? proxyPublicAddress(config) : nil)
        settings.sessionRecording = config.file.auth.sessionRecording
        settings.authType = config.file.auth.authenticationType
        settings.connectorName = config.file.auth.connectorName
        settings.localAuth = config.file.auth.localAuth
        if let idle = config.file.auth.webIdleTimeout { settings.webIdleTimeout = idle }
        settings.metrics = metrics
        settings.auditFailure = config.file.teleport.storage.auditFailure
        if let uri = config.file.teleport.storage.auditSessionsURI, uri.hasPrefix("file://") {
            settings.sessionsDirectory = URL(fileURLWithPath: String(uri.dropFirst("file://".count)))
        } else {
            // `s3://` (checked by DaemonConfig.resolve): recordings in the bucket; the directory
            // below keeps only uploads found corrupt.
            if let uri = config.file.teleport.storage.auditSessionsURI, uri.hasPrefix("s3://"),
                let location = try? S3Location.parse(uri, defaultRegion: config.file.teleport.storage.region)
            {
                settings.recordingStorage = S3RecordingStorage(client: S3Client(location: location))
            }
            settings.sessionsDirectory = config.dataDir.appendingPathComponent("log").appendingPathComponent("sessions").appendingPathComponent("default")
        }
        return settings
    }

    /// The address users reach the proxy's HTTPS at: `proxy_service.public_addr`, else the web
    /// listen address (the node name when it listens on every interface). Signup links and the
    /// `tsh login --proxy=` hints use it alike.
    static func proxyPublicAddress(_ config: DaemonConfig) -> String {
        if let configured = config.file.proxy.publicAddrs.first { return configured }
        guard let web = try? HostPort.parse(config.file.proxy.webListenAddr, defaultPort: 3080, key: "web_listen_addr") else {
            return "\(config.nodeName):3080"
        }
        let host = web.host == "0.0.0.0" || web.host == "::" ? config.nodeName : web.host
        return HostPort.join(host, web.port)
    }

    static func missingAuthServer(_ service: String) -> TeleportError {
        TeleportError.badParameter(
            "the \(service) service needs an auth server: pass --auth-server=HOST:3025 (or the proxy's HOST:3080) or set teleport.auth_servers or teleport.proxy_server")
    }

    /// The web port's routes and one-port settings: agents' calls to auth (ALPN `teleport-auth`)
    /// pass through to the auth service; `multiplexed` when reverse tunnels share the port.
    static func wireWebPort(
        _ settings: inout ProxyWebServer.Settings, config: DaemonConfig, authAddress: String, publicAddr: String
    ) throws {
        let auth = try HostPort.parse(authAddress, defaultPort: 3025, key: "auth server")
        // Agents' calls to the auth service fail over like the proxy's own (`auth_servers: [a, b]`).
        let others = config.runAuth ? [] : try config.authServers.map { try HostPort.parse($0, defaultPort: 3025, key: "auth_servers") }
        let targets = [auth] + others.filter { $0.host != auth.host || $0.port != auth.port }
        settings.route(
            ALPNRoute.authProtocol,
            to: targets.count == 1 ? .passthrough(host: auth.host, port: auth.port) : .passthroughAny(targets.map { (host: $0.host, port: $0.port) }))
        settings.multiplexed = config.file.proxy.multiplexed
        settings.tunnelListenAddr = settings.multiplexed ? config.file.proxy.webListenAddr : config.file.proxy.tunnelListenAddr
        let web = try HostPort.parse(config.file.proxy.webListenAddr, defaultPort: 3080, key: "proxy_service.web_listen_addr")
        if let configured = config.file.proxy.tunnelPublicAddr {
            settings.tunnelPublicAddr = configured
        } else if config.file.proxy.publicAddrs.isEmpty, ["0.0.0.0", "::", ""].contains(web.host) {
            // No public name known: agents dial the address they pinged (see ProxyPing.Answer).
            settings.tunnelPublicAddr = ""
        } else if settings.multiplexed {
            settings.tunnelPublicAddr = publicAddr
        } else {
            let tunnel = try HostPort.parse(config.file.proxy.tunnelListenAddr, defaultPort: 3024, key: "proxy_service.tunnel_listen_addr")
            let publicHost = (try? HostPort.parse(publicAddr, defaultPort: 3080, key: "public_addr").host) ?? tunnel.host
            settings.tunnelPublicAddr = HostPort.join(publicHost, tunnel.port)
        }
    }

    /// The address the local proxy and node dial for the auth service in the same process.
    static func localAuthAddress(_ listen: String) -> String {
        if listen.hasPrefix("0.0.0.0:") { return "127.0.0.1:" + listen.dropFirst("0.0.0.0:".count) }
        if listen.hasPrefix("[::]:") { return "[::1]:" + listen.dropFirst("[::]:".count) }
        return listen
    }

    /// `teleport.storage` as the etcd backend's settings.
    static func etcdSettings(_ storage: FileConfig.Storage) -> EtcdSettings {
        EtcdSettings(
            peers: storage.peers, prefix: storage.prefix, tlsCertFile: storage.tlsCertFile, tlsKeyFile: storage.tlsKeyFile,
            tlsCAFile: storage.tlsCAFile, username: storage.username, passwordFile: storage.passwordFile, insecure: storage.insecure,
            maxMessageBytes: storage.etcdMaxClientMsgSizeBytes)
    }

    static func openAuth(
        config: DaemonConfig, dataDir: DataDirectory, clock: SystemClock, metrics: TeleportMetrics, logger: Logger
    ) async throws -> (any Backend, AuthServer) {
        let storage = config.file.teleport.storage
        let backend: any Backend
        switch storage.type {
        case .postgres:
            backend = try await PostgresBackend.open(connString: storage.connString ?? "", clock: clock, logger: logger.with("backend"))
        case .etcd:
            backend = try await EtcdBackend.open(settings: etcdSettings(storage), clock: clock, logger: logger.with("backend"))
        case .sqlite:
            let path = storage.path.map { URL(fileURLWithPath: $0, relativeTo: dataDir.url).standardizedFileURL } ?? dataDir.backendPath
            try FileManager.default.createDirectory(
                at: path.deletingLastPathComponent(), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            backend = try await SQLiteBackend.open(path: path.path, clock: clock, logger: logger.with("backend"))
        }
        let audit: any AuditEmitter
        do {
            audit = try await AuditLogs.open(uris: storage.auditEventsURIs, dataDir: dataDir, hostUUID: try dataDir.hostUUID(), logger: logger.with("audit"))
        } catch {
            try? await backend.close()
            throw error
        }
        var bootstrap: [AnyResource] = []
        if let bootstrapPath = config.bootstrapPath {
            guard let text = try? String(contentsOfFile: bootstrapPath, encoding: .utf8) else {
                throw TeleportError.notFound("--bootstrap: cannot read \(bootstrapPath)")
            }
            bootstrap = try ResourceCodec.decodeDocuments(text, source: bootstrapPath)
        }
        do {
            let auth = try await AuthServer.open(
                backend: MeteredBackend(base: backend, metrics: metrics), audit: audit, clock: clock, configuredName: config.file.auth.clusterName,
                staticTokens: config.file.auth.tokens, settings: authSettings(config, metrics: metrics), bootstrap: bootstrap,
                logger: logger.with("auth"))
            return (backend, auth)
        } catch {
            try? await backend.close()
            throw error
        }
    }
}

extension Logger {
    /// A copy labelled with a component (`auth`, `proxy`, ...).
    func with(_ component: String) -> Logger {
        var copy = self
        copy[metadataKey: "tp.component"] = "\(component)"
        return copy
    }
}

/// Runs the SQLite sweeper as a service.
struct SweeperService: Service, CustomStringConvertible {
    let backend: SQLiteBackend
    var description: String { "SweeperService" }
    func run() async throws {
        await cancelWhenGracefulShutdown {
            await backend.runSweeper(every: .seconds(10))
        }
    }
}

/// Sweeps expired items and prunes the event log of the PostgreSQL backend, as a service (every auth
/// server sharing the database runs one; they do not conflict).
struct PostgresMaintenanceService: Service, CustomStringConvertible {
    let backend: PostgresBackend
    var description: String { "PostgresMaintenanceService" }
    func run() async throws {
        await cancelWhenGracefulShutdown {
            await backend.runMaintenance(every: .seconds(10))
        }
    }
}

/// Logs once when every enabled service is up (and tells the process that started it by a
/// graceful restart, through `readyDescriptor`), then waits for shutdown.
struct ReadinessLogger: Service, CustomStringConvertible {
    let readiness: Readiness
    var description: String { "ReadinessLogger" }
    let logger: Logger
    let roles: [String]
    let dataDir: String
    var readyDescriptor: Int32?

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !readiness.pending.isEmpty {
                try await Task.sleep(for: .milliseconds(100))
            }
            logger.info("teleport is ready", metadata: ["tp.roles": "\(roles.joined(separator: ","))", "tp.data_dir": "\(dataDir)"])
            // Sockets handed over for listeners this configuration no longer has.
            ListenerSockets.shared.closeUnclaimed()
            if let readyDescriptor {
                _ = "ready\n".withCString { write(readyDescriptor, $0, 6) }
                close(readyDescriptor)
            }
            try await gracefulShutdown()
        }
    }
}
