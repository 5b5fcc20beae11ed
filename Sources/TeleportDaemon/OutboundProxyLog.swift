import Logging
import TeleportAPI
import TeleportAuthClient

/// At start: checks `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` (bad values stop the daemon with a
/// one-line error), exempts the process's own auth service from the proxy, and logs once (INFO)
/// which proxy each auth server address is reached through.
enum OutboundProxyLog {
    static func check(_ config: DaemonConfig, localAuthAddress: String?, logger: Logger) throws {
        if let local = localAuthAddress, let parsed = try? HostPort.parse(local, defaultPort: 3025, key: "auth_service.listen_addr") {
            OutboundDial.exemptFromProxy(host: parsed.host, port: parsed.port)
        }
        let proxies = try OutboundDial.processProxies()
        guard proxies.httpsProxy ?? proxies.httpProxy != nil, config.runProxy || config.runNode, !config.runAuth else { return }
        for address in config.authServers {
            guard let parsed = try? HostPort.parse(address, defaultPort: 3025, key: "--auth-server") else { continue }
            logger.info("outbound connection to the auth server \(proxies.describe(address: parsed.host, port: parsed.port))")
        }
    }
}
