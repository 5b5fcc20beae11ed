public import Foundation
public import TeleportAPI
import Logging
import TeleportServices

/// Trusted clusters (issue 20), step 2: the leaf's proxy keeps a reverse tunnel to the root's
/// proxy. The auth services tell their proxies what to do: on a leaf, which roots to keep a tunnel
/// to (the enabled `trusted_cluster`s) and the root host CA that vouches for each root proxy; on a
/// root, which leaves may keep one and the leaf host CA their proxy's certificate must chain to.
/// The root's proxies report each leaf's tunnel, which becomes the `remote_cluster`'s
/// `status.connection` and `status.last_heartbeat`.
extension AuthServer {
    /// A `remote_cluster` whose last heartbeat is older than this is shown `offline` (its proxy
    /// stopped reporting: it crashed, or lost its auth server).
    public static let remoteClusterOfflineAfter: TimeInterval = 60

    /// Root side: the leaves that may keep a tunnel, with their host CA certificates.
    public func leafTunnelAuthorities() async throws -> [AuthAPI.LeafTunnelAuthority] {
        var result: [AuthAPI.LeafTunnelAuthority] = []
        for leaf in try await remoteClusters.list() {
            guard let ca = try await trustedAuthority(cluster: leaf.name, type: .host) else { continue }
            let pems = ca.trustedKeys.tls.map(\.cert)
            guard !pems.isEmpty else { continue }
            result.append(.init(clusterName: leaf.name, hostCAPEMs: pems))
        }
        return result.sorted { $0.clusterName < $1.clusterName }
    }

    /// Root side: a proxy reports the tunnel of `leaf` (`online`: it holds it now; `offline`: it
    /// just closed). The record is only ever updated, never created: a heartbeat racing `tctl rm
    /// rc/NAME` does not bring the trust back (`notFound`).
    public func recordRemoteClusterHeartbeat(leaf: String, connection: String) async throws {
        guard ["online", "offline"].contains(connection) else {
            throw TeleportError.badParameter("connection must be online or offline, not \(connection.debugDescription)")
        }
        for _ in 0..<3 {
            var record = try await remoteClusters.get(leaf)
            let now = clock.now()
            if connection == "online" { record.status.lastHeartbeat = now }
            if record.status.connection != connection {
                logger.info("leaf cluster is \(connection)", metadata: ["tp.cluster": "\(leaf)"])
            }
            record.status.connection = connection
            do {
                try await remoteClusters.update(record)
                return
            } catch let error as TeleportError where error.code == .compareFailed {
                continue  // another proxy's heartbeat: read again
            }
        }
    }

    /// Root side: marks `offline` every `remote_cluster` shown online whose last heartbeat is older
    /// than ``remoteClusterOfflineAfter``; returns their names.
    @discardableResult public func markStaleRemoteClustersOffline() async throws -> [String] {
        let now = clock.now()
        var marked: [String] = []
        for var record in try await remoteClusters.list() where record.status.connection == "online" {
            let last = record.status.lastHeartbeat ?? .distantPast
            guard now.timeIntervalSince(last) > Self.remoteClusterOfflineAfter else { continue }
            record.status.connection = "offline"
            do {
                try await remoteClusters.update(record)
                marked.append(record.name)
                logger.info("leaf cluster is offline (no heartbeat)", metadata: ["tp.cluster": "\(record.name)"])
            } catch let error as TeleportError where error.code == .compareFailed || error.code == .notFound {
                continue  // a heartbeat or a removal came first
            }
        }
        return marked
    }

    /// Leaf side: the enabled trusts, each with the root's host CA, for this cluster's proxies to
    /// keep a tunnel to each root. A disabled or removed trust is not listed (its tunnel closes).
    public func rootTunnelTargets() async throws -> [AuthAPI.RootTunnelTarget] {
        var result: [AuthAPI.RootTunnelTarget] = []
        for trusted in try await trustedClusters.list() where trusted.spec.enabled {
            guard let ca = try await trustedAuthority(cluster: trusted.name, type: .host) else { continue }
            let pems = ca.trustedKeys.tls.map(\.cert)
            guard !pems.isEmpty else { continue }
            let tunnel = trusted.spec.tunnelAddr.flatMap { $0.isEmpty ? nil : $0 }
            result.append(.init(clusterName: trusted.name, webProxyAddr: trusted.spec.webProxyAddr, tunnelAddr: tunnel, hostCAPEMs: pems))
        }
        return result.sorted { $0.clusterName < $1.clusterName }
    }
}
