import Foundation
import Logging
import NIOCore
import NIOPosix
public import TeleportAPI
import TeleportAuthClient
import TeleportTunnel

/// Root side of trusted clusters (issue 20): each proxy sends this cluster's current user and host
/// CAs (public halves) on every leaf's reverse tunnel (an `authorities` request of
/// ``ClusterWire``), so the leaves follow the root's CA rotations: the leaf's auth service holds
/// what was sent last (both keys while a rotation is under way, the new key once it completed).
/// A leaf is sent the CAs when its tunnel is new to this proxy, when they changed, and every
/// ``every`` seconds in any case; a failed send is retried at the next look.
public enum ClusterAuthorityPush {
    /// What was last sent to a leaf, and when.
    public struct Sent: Sendable, Equatable {
        var digest: String
        var at: Date
    }

    /// How often the CAs are sent again when nothing changed.
    static let every: TimeInterval = 60

    /// The leaves to send the CAs of `digest` to now (pure): connected ones never sent to, sent
    /// other CAs, or not sent to for `every` seconds.
    static func due(connected: Set<String>, digest: String, sent: [String: Sent], now: Date, every: TimeInterval = every) -> [String] {
        connected.sorted().filter { leaf in
            guard let last = sent[leaf] else { return true }
            return last.digest != digest || now.timeIntervalSince(last.at) >= every
        }
    }

    /// A digest of the CAs' public keys and of the proxies (order does not matter).
    static func digest(_ authorities: [CertAuthority], proxies: [String]?) -> String {
        digest(authorities) + "\nproxies:" + (proxies.map { $0.sorted().joined(separator: ",") } ?? "unknown")
    }

    /// A digest of the CAs' public keys (order does not matter).
    static func digest(_ authorities: [CertAuthority]) -> String {
        authorities.map { ca in
            let keys = ca.trustedKeys
            return ([ca.spec.type.rawValue, ca.spec.clusterName] + keys.ssh.map(\.publicKey).sorted() + keys.tls.map(\.cert).sorted()).joined(separator: "|")
        }.sorted().joined(separator: "\n")
    }
}

extension ClusterTunnelService {
    /// Sends the CAs to the leaves whose tunnels this proxy holds, where due; forgets leaves whose
    /// tunnel closed (a new tunnel is sent them at once).
    func pushAuthorities(sent: inout [String: ClusterAuthorityPush.Sent]) async {
        let connected = Set(server.clusters.connectedHosts)
        sent = sent.filter { connected.contains($0.key) }
        guard !connected.isEmpty else { return }
        let authorities: [CertAuthority]
        do {
            authorities = try await auth.clusterAuthoritiesForLeaves()
        } catch {
            logger.debug("cannot read this cluster's CAs for its leaves", metadata: ["tp.error": "\(error)"])
            return
        }
        // This cluster's proxies go with them: a leaf keeps a tunnel to each (RootProxyDirectory).
        let proxies = try? await auth.proxies().map(\.name).sorted()
        let digest = ClusterAuthorityPush.digest(authorities, proxies: proxies)
        let now = Date()
        for leaf in ClusterAuthorityPush.due(connected: connected, digest: digest, sent: sent, now: now) {
            do {
                let answer = try await sendAuthorities(authorities, proxies: proxies, to: leaf)
                sent[leaf] = .init(digest: digest, at: now)
                if !answer.isEmpty {
                    logger.info("leaf cluster \(leaf) took this cluster's new CAs", metadata: ["tp.cluster": "\(leaf)", "tp.types": "\(answer)"])
                }
            } catch {
                logger.info(
                    "cannot send this cluster's CAs to leaf cluster \(leaf); trying again",
                    metadata: ["tp.cluster": "\(leaf)", "tp.error": "\((error as? TeleportError)?.message ?? "\(error)")"])
            }
        }
    }

    /// One `authorities` request on `leaf`'s tunnel; the leaf's answer (the CA types it took).
    func sendAuthorities(_ authorities: [CertAuthority], proxies: [String]? = nil, to leaf: String) async throws -> String {
        let request = ClusterWire.Request(
            op: ClusterWire.Request.authorities, certificate: "", target: nil, authorities: authorities, proxies: proxies)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let answered = loop.makePromise(of: String.self)
        let channel = try await server.openClusterChannel(to: leaf, service: .clusterProxy, originator: nil) { channel in
            try channel.pipeline.syncOperations.addHandler(ClusterAnswerHandler(request: request, cluster: leaf, keepOpen: false, answered: answered))
        }.get()
        defer { channel.close(promise: nil) }
        return try await answered.futureResult.get()
    }
}
