import Foundation
public import Logging
public import ServiceLifecycle
public import TeleportAPI
public import TeleportAuthClient
public import TeleportTunnel

/// Root side of trusted clusters (issue 20) on each proxy: keeps the tunnel server's leaf trust
/// (``ClusterTunnelTrust``) in step with the auth service's `remote_cluster`s and their host CAs,
/// closes the tunnel of a leaf that is no longer trusted (`tctl rm rc/NAME`), and reports each
/// leaf's tunnel to the auth service (`online` while held, every ``heartbeatEvery``; `offline`
/// once it closed), which keeps it as the `remote_cluster`'s status.
public struct ClusterTunnelService: Service, CustomStringConvertible {
    let server: ReverseTunnelServer
    let trust: ClusterTunnelTrust
    let auth: AuthClient
    let onTrustChange: @Sendable () -> Void
    let logger: Logger
    /// How often the trust is read again and the tunnels looked at.
    public var interval: Duration = .seconds(3)
    /// How often a held tunnel is reported `online`.
    var heartbeatEvery: TimeInterval = 10

    public var description: String { "ClusterTunnelService" }

    /// Creates the service; `onTrustChange` is called when the set of trusted leaf CAs changed
    /// (the daemon rebuilds the tunnel listener's TLS context from ``ClusterTunnelTrust/trustedRootPEMs``).
    public init(
        server: ReverseTunnelServer, trust: ClusterTunnelTrust, auth: AuthClient, onTrustChange: @escaping @Sendable () -> Void, logger: Logger
    ) {
        self.server = server
        self.trust = trust
        self.auth = auth
        self.onTrustChange = onTrustChange
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var reported: [String: Date] = [:]
            var sent: [String: ClusterAuthorityPush.Sent] = [:]
            while !Task.isCancelled {
                await tick(reported: &reported)
                // The leaves follow this cluster's CA rotations (ClusterAuthorityPush).
                await pushAuthorities(sent: &sent)
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// One look: the trust, the tunnels to close, the heartbeats to send.
    func tick(reported: inout [String: Date]) async {
        do {
            let leaves = try await auth.leafTunnelAuthorities()
            let byName = Dictionary(leaves.map { ($0.clusterName, $0.hostCAPEMs) }, uniquingKeysWith: { first, _ in first })
            if trust.setLeaves(byName) {
                logger.info("the trusted leaf clusters changed", metadata: ["tp.clusters": "\(byName.keys.sorted().joined(separator: ","))"])
                onTrustChange()
            }
            for name in server.clusters.connectedHosts where byName[name] == nil {
                logger.info("closing the reverse tunnel of leaf cluster \(name): it is no longer trusted (tctl rm rc/\(name)?)")
                server.clusters.close(name)
            }
        } catch {
            // The auth service may be briefly away: keep the trust as it was.
            logger.debug("cannot read the trusted leaf clusters; keeping them", metadata: ["tp.error": "\(error)"])
        }
        let now = Date()
        for (leaf, connection) in Self.heartbeats(connected: Set(server.clusters.connectedHosts), reported: reported, now: now, every: heartbeatEvery) {
            do {
                try await auth.remoteClusterHeartbeat(leaf: leaf, connection: connection)
                if connection == "online" { reported[leaf] = now } else { reported[leaf] = nil }
            } catch let error as TeleportError where error.code == .notFound {
                reported[leaf] = nil
                server.clusters.close(leaf)
            } catch {
                logger.debug("cannot report leaf cluster \(leaf)'s tunnel", metadata: ["tp.error": "\(error)"])
            }
        }
    }

    /// The heartbeats to send now (pure): `online` for a held tunnel not reported in the last
    /// `every` seconds (or never), `offline` for a reported one that is no longer held.
    static func heartbeats(connected: Set<String>, reported: [String: Date], now: Date, every: TimeInterval) -> [(leaf: String, connection: String)] {
        var result: [(leaf: String, connection: String)] = []
        for leaf in connected.sorted() {
            if let last = reported[leaf], now.timeIntervalSince(last) < every { continue }
            result.append((leaf, "online"))
        }
        for leaf in reported.keys.sorted() where !connected.contains(leaf) {
            result.append((leaf, "offline"))
        }
        return result
    }
}
