import Foundation
public import NIOSSL
import Synchronization
public import TeleportAPI
import TeleportCrypto
import X509

/// Who opened a reverse tunnel to a proxy, as its certificate says.
public enum TunnelPeer: Sendable, Equatable {
    /// An agent of this cluster (a node, a database or Kubernetes service behind NAT), by host UUID.
    case agent(hostUUID: String)
    /// The proxy of a leaf cluster that trusts this one (issue 20), by cluster name and the
    /// leaf proxy's host UUID.
    case cluster(name: String, hostUUID: String)
}

/// The root side's trust for reverse tunnels of leaf clusters (issue 20): the host CAs of the
/// leaves this cluster is trusted by, kept apart from this cluster's own CAs and asked at each
/// handshake. The proxy's tunnel TLS accepts a client certificate that chains to this cluster's
/// host CA or to a leaf's (``trustedRootPEMs``); because several CAs are trusted at once,
/// ``identify(_:localCluster:)`` then checks that the certificate was issued by the CA of the
/// cluster it names: a leaf's CA can never vouch for a host of this cluster, nor for another leaf,
/// and a leaf's tunnel must come from its proxy (role `Proxy`).
public final class ClusterTunnelTrust: Sendable {
    struct State {
        var localPEMs: [String]
        var local: [Certificate]
        var leafPEMs: [String: [String]] = [:]
        var leaves: [String: [Certificate]] = [:]
    }

    private let state: Mutex<State>

    /// Starts with this cluster's trusted CAs (the proxy identity's) and no leaves.
    public init(localCAPEMs: [String]) {
        state = Mutex(State(localPEMs: localCAPEMs, local: Self.parse(localCAPEMs)))
    }

    /// Replaces this cluster's CAs (the proxy's identity renewed during a CA rotation).
    public func setLocal(_ pems: [String]) {
        let parsed = Self.parse(pems)
        state.withLock {
            $0.localPEMs = pems
            $0.local = parsed
        }
    }

    /// Replaces the leaves' host CAs (cluster name → PEM certificates); true when they changed.
    @discardableResult public func setLeaves(_ leaves: [String: [String]]) -> Bool {
        let parsed = leaves.mapValues(Self.parse)
        return state.withLock {
            guard $0.leafPEMs != leaves else { return false }
            $0.leafPEMs = leaves
            $0.leaves = parsed
            return true
        }
    }

    /// The leaf clusters whose tunnels are accepted now.
    public var leafNames: Set<String> { state.withLock { Set($0.leaves.keys) } }

    /// The TLS trust roots of the tunnel listener: this cluster's CAs, then every leaf's host CA.
    public var trustedRootPEMs: [String] {
        state.withLock { state in state.localPEMs + state.leafPEMs.keys.sorted().flatMap { state.leafPEMs[$0] ?? [] } }
    }

    /// Who a verified tunnel certificate belongs to; throws `accessDenied` with a one-line reason
    /// (a certificate issued by the wrong CA for the cluster it names, a leaf that is not trusted,
    /// a leaf host that is not a proxy, an agent role this proxy does not serve).
    public func identify(_ certificate: NIOSSLCertificate?, localCluster: String, agentRoles: Set<SystemRole>) throws -> TunnelPeer {
        guard let certificate else {
            throw TeleportError.accessDenied("no certificate was presented; a tunnel needs the host's certificate (data_dir/keys)")
        }
        let parsed: Certificate
        let identity: X509Identity
        do {
            parsed = try Certificate.fromDER(try certificate.toDERBytes())
            identity = try X509Identity(certificate: parsed)
        } catch {
            throw TeleportError.accessDenied("the certificate cannot be read: \(error)")
        }
        let (local, leaves) = state.withLock { ($0.local, $0.leaves) }
        if identity.clusterName == localCluster {
            // With leaves trusted, the TLS layer also accepted their CAs: the issuer must be ours.
            if !leaves.isEmpty, !Self.issued(parsed, byAnyOf: local) {
                throw TeleportError.accessDenied(
                    "the certificate of \(identity.username) names cluster \(localCluster) but was not issued by its host CA")
            }
            return .agent(hostUUID: try TunnelTLS.hostUUID(of: certificate, roles: agentRoles, clusterName: localCluster))
        }
        guard let authorities = leaves[identity.clusterName] else {
            throw TeleportError.accessDenied(
                "the certificate of \(identity.username) is for cluster \(identity.clusterName.debugDescription), which is neither \(localCluster) nor a leaf cluster that trusts it")
        }
        guard Self.issued(parsed, byAnyOf: authorities) else {
            throw TeleportError.accessDenied(
                "the certificate of \(identity.username) names leaf cluster \(identity.clusterName) but was not issued by that leaf's host CA")
        }
        guard identity.systemRole == .proxy else {
            let what = identity.systemRole.map { "a \($0.rawValue) certificate" } ?? "a user certificate"
            throw TeleportError.accessDenied(
                "\(what) of leaf cluster \(identity.clusterName) cannot open a cluster tunnel; only the leaf's proxy can")
        }
        let hostUUID = try TunnelTLS.hostUUID(of: certificate, role: .proxy, clusterName: identity.clusterName)
        return .cluster(name: identity.clusterName, hostUUID: hostUUID)
    }

    /// Whether one of `authorities` signed `certificate` (same issuer name and a valid signature).
    static func issued(_ certificate: Certificate, byAnyOf authorities: [Certificate]) -> Bool {
        authorities.contains { $0.subject == certificate.issuer && $0.publicKey.isValidSignature(certificate.signature, for: certificate) }
    }

    static func parse(_ pems: [String]) -> [Certificate] {
        pems.flatMap { pem in
            // A bundle may hold several certificates.
            pem.components(separatedBy: "-----END CERTIFICATE-----").compactMap { part -> Certificate? in
                guard let begin = part.range(of: "-----BEGIN CERTIFICATE-----") else { return nil }
                return try? Certificate.fromPEM(String(part[begin.lowerBound...]) + "-----END CERTIFICATE-----\n")
            }
        }
    }
}
