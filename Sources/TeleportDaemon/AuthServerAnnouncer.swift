import Foundation
import Logging
import ServiceLifecycle
import TeleportAPI
import TeleportAuthClient
import TeleportAuthServer

/// An auth server's announcement of itself in the shared store (`/authservers/HOSTUUID`, expiring
/// after `ttl`), refreshed every `interval`: hosts list the auth servers from it and keep them in
/// `authservers.json` (issue 18).
struct AuthServerAnnouncer: Service, CustomStringConvertible {
    let auth: AuthServer
    let entry: AuthAPI.AuthServerEntry
    let logger: Logger
    var interval: Duration = .seconds(10)
    var ttl: TimeInterval = 60

    var description: String { "AuthServerAnnouncer" }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var failing = false
            while !Task.isCancelled {
                do {
                    try await auth.announce(entry, ttl: ttl)
                    if failing { logger.info("announcing this auth server works again") }
                    failing = false
                } catch {
                    if !failing { logger.warning("cannot announce this auth server in the backend", metadata: ["tp.error": "\(error)"]) }
                    failing = true
                }
                try await Task.sleep(for: interval)
            }
        }
    }

    /// The address hosts reach this auth server at: the first `auth_service.public_addr`, else the
    /// listen address, with `advertise_ip` (else the node name) for an unspecified host.
    static func address(_ config: DaemonConfig) -> String {
        if let configured = config.file.auth.publicAddrs.first {
            if let parsed = try? HostPort.parse(configured, defaultPort: 3025, key: "auth_service.public_addr") {
                return HostPort.join(parsed.host, parsed.port)
            }
            return configured
        }
        guard let listen = try? HostPort.parse(config.file.auth.listenAddr, defaultPort: 3025, key: "auth_service.listen_addr") else {
            return config.file.auth.listenAddr
        }
        let unspecified = listen.host.isEmpty || listen.host == "0.0.0.0" || listen.host == "::"
        return HostPort.join(unspecified ? (config.advertiseIP ?? config.nodeName) : listen.host, listen.port)
    }
}

/// Keeps a host's `authservers.json` fresh: lists the cluster's auth servers every `interval`
/// (at once at start) and rewrites the file when the list changed. An empty or failed listing
/// leaves the file as it is.
struct AuthServersCacheService: Service, CustomStringConvertible {
    let client: AuthClient
    let dataDir: URL
    let logger: Logger
    var interval: Duration = .seconds(10)

    var description: String { "AuthServersCacheService" }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let addresses = try await client.authServers().map(\.addr)
                    if !addresses.isEmpty, try AuthServersCache.write(addresses, dataDir: dataDir) {
                        logger.info(
                            "updated the cache of known auth servers",
                            metadata: ["tp.file": "\(AuthServersCache.fileName)", "tp.addresses": "\(addresses.joined(separator: ","))"])
                    }
                } catch {
                    logger.debug("cannot refresh the cache of known auth servers", metadata: ["tp.error": "\(error)"])
                }
                try await Task.sleep(for: interval)
            }
        }
    }
}
