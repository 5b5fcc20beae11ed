#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TeleportAPI

/// Tries every enabled listener's address before anything starts (and before the data directory
/// is opened), so that a port in use is reported the same way for each listener — auth 3025,
/// proxy web 3080, proxy SSH 3023, reverse tunnels 3024 (unless multiplexed on the web port), node SSH 3022, diagnostics 3000 — and not halfway through a
/// start with some services already up. The services still report their own bind failures with
/// the same wording (``ListenError``) when a port is taken in between.
enum ListenPreflight {
    /// The enabled listeners: setting name, address, default port.
    static func listeners(_ config: DaemonConfig) -> [(key: String, address: String, port: Int)] {
        var listeners: [(key: String, address: String, port: Int)] = []
        if config.runAuth { listeners.append(("auth_service.listen_addr", config.file.auth.listenAddr, 3025)) }
        if config.runProxy {
            listeners.append(("proxy_service.web_listen_addr", config.file.proxy.webListenAddr, 3080))
            listeners.append(("proxy_service.listen_addr", config.file.proxy.listenAddr, 3023))
            // One port: reverse tunnels share the web listener, there is no tunnel listener to check.
            if !config.file.proxy.multiplexed {
                listeners.append(("proxy_service.tunnel_listen_addr", config.file.proxy.tunnelListenAddr, 3024))
            }
        }
        // A tunnelled node without listen_addr binds no port: with proxy_server it is known now; a
        // node-only process whose auth server may turn out to be a proxy (`--auth-server=PROXY:3080`,
        // found by its ping at start) is not checked here either: nothing else starts in that
        // process, and a direct node's SSH service reports a taken port in the same words.
        let mayBeTunnelled = config.file.teleport.proxyServer != nil || (!config.runAuth && !config.runProxy)
        let tunnelledWithoutListener = mayBeTunnelled && !config.file.ssh.listenAddrConfigured
        if config.runNode && !tunnelledWithoutListener { listeners.append(("ssh_service.listen_addr", config.file.ssh.listenAddr, 3022)) }
        if config.runProxy, let postgres = config.file.proxy.postgresListenAddr {
            listeners.append(("proxy_service.postgres_listen_addr", postgres, 5432))
        }
        if config.runProxy, let kube = config.file.proxy.kubeListenAddr {
            listeners.append(("proxy_service.kube_listen_addr", kube, 3026))
        }
        if config.runProxy, let mysql = config.file.proxy.mysqlListenAddr {
            listeners.append(("proxy_service.mysql_listen_addr", mysql, 3036))
        }
        if config.runDb { listeners.append(("db_service.listen_addr", config.file.db.listenAddr, 3029)) }
        if config.runApp { listeners.append(("app_service.listen_addr", config.file.app.listenAddr, 3031)) }
        if config.runKube, !(mayBeTunnelled && !config.file.kube.listenAddrConfigured) {
            listeners.append(("kubernetes_service.listen_addr", config.file.kube.listenAddr, 3027))
        }
        if let diag = config.diagAddr { listeners.append(("teleport.diag_addr or --diag-addr", diag, 3000)) }
        return listeners
    }

    /// Throws the listener's one-line error for the first address that cannot be bound.
    static func check(_ config: DaemonConfig) throws {
        for listener in listeners(config) {
            let parsed = try HostPort.parse(listener.address, defaultPort: listener.port, key: listener.key)
            // A socket a graceful restart handed over is this process's already.
            if ListenerSockets.shared.isInherited(host: parsed.host, port: parsed.port) { continue }
            guard parsed.port != 0, let code = bindError(host: parsed.host, port: parsed.port) else { continue }
            throw ListenError.describe(
                TeleportError.connectionProblem("bind failed"), errno: code, address: HostPort.join(parsed.host, parsed.port), key: listener.key)
        }
    }

    /// The errno of binding `host:port` (with SO_REUSEADDR, as the listeners do), or nil when it binds.
    static func bindError(host: String, port: Int) -> Int32? {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = SOCK_STREAM
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(result) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        return bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 ? nil : errno
    }
}
