public import Foundation
public import TeleportAPI
import Logging
import TeleportAuthClient
import TeleportBackend
import TeleportCrypto
public import TeleportServices

import X509

/// Trusted clusters (issue 20): the exchange of CAs between a root and a leaf cluster, and where
/// each side keeps the other's CAs.
///
/// Another cluster's CAs are never stored with this cluster's own (`/authorities/`): they live
/// under `/trustedauthorities/CLUSTER/TYPE`, public halves only, so no list of this cluster's
/// CAs, no mutual TLS root set and no certificate feed picks them up by accident. Each use of
/// them is explicit: a root keeps a leaf's host CA (its proxy's reverse tunnel) and user CA; a leaf
/// keeps the root's user CA (the root's users, mapped through `role_map`, while the trust is
/// enabled) and host CA (only to check the root's proxy when it dials its tunnel).
extension AuthServer {
    /// Backend prefix of other clusters' CAs.
    static let trustedAuthoritiesPrefix = "/trustedauthorities/"

    /// The store of `cluster`'s CAs as this cluster trusts them (names: CA types).
    func trustedAuthorityStore(_ cluster: String) -> ResourceStore<CertAuthority> {
        ResourceStore(backend: stores.backend, prefix: Self.trustedAuthoritiesPrefix + cluster + "/")
    }

    /// Leaf side: the trusted clusters (roots) this cluster trusts.
    public var trustedClusters: ResourceStore<TrustedCluster> { ResourceStore(backend: stores.backend, prefix: TrustedCluster.storagePrefix) }
    /// Root side: the leaf clusters that trust this cluster.
    public var remoteClusters: ResourceStore<RemoteCluster> { ResourceStore(backend: stores.backend, prefix: RemoteCluster.storagePrefix) }

    /// The CA of `type` of another cluster this cluster trusts; nil when there is none.
    public func trustedAuthority(cluster: String, type: CertAuthority.CAType) async throws -> CertAuthority? {
        guard cluster != clusterName else { return nil }
        do {
            return try await trustedAuthorityStore(cluster).get(type.rawValue)
        } catch let error as TeleportError where error.code == .notFound {
            return nil
        }
    }

    /// Every other cluster's CAs this cluster holds.
    public func allTrustedAuthorities() async throws -> [CertAuthority] {
        try await stores.backend.getRange(prefix: Self.trustedAuthoritiesPrefix).map {
            try ResourceCodec.jsonDecoder().decode(CertAuthority.self, from: $0.value)
        }
    }

    /// Removes every CA of `cluster` this cluster holds.
    func forgetTrustedAuthorities(cluster: String) async throws {
        for type in CertAuthority.CAType.clusterTrust {
            try? await trustedAuthorityStore(cluster).delete(type.rawValue)
        }
    }

    /// The user and host CAs a cluster hands to the other side: public halves of the trusted keys.
    public func exchangeableAuthorities() async throws -> [CertAuthority] {
        var result: [CertAuthority] = []
        for type in CertAuthority.CAType.clusterTrust {
            var ca = try await certAuthority(type).withoutSecrets
            ca.spec.activeKeys = ca.trustedKeys.withoutSecrets
            ca.spec.additionalTrustedKeys = nil
            ca.spec.rotation = nil
            ca.spec.retiredSSHPublicKeys = nil
            ca.metadata.revision = nil
            result.append(ca)
        }
        return result
    }

    /// Checks another cluster's CAs as received: exactly one user and one host CA, both of
    /// `cluster`, each with an SSH key and an X.509 certificate that parse; returns them without
    /// any private key and named by type.
    static func checkExchanged(_ authorities: [CertAuthority], cluster: String, side: String) throws -> [CertAuthority] {
        var result: [CertAuthority] = []
        for type in CertAuthority.CAType.clusterTrust {
            let matching = authorities.filter { $0.spec.type == type }
            guard matching.count == 1, let ca = matching.first else {
                throw TeleportError.badParameter("the \(side) must send exactly one \(type.rawValue) CA")
            }
            guard ca.spec.clusterName == cluster else {
                throw TeleportError.badParameter(
                    "the \(side)'s \(type.rawValue) CA belongs to cluster \"\(ca.spec.clusterName)\", not \"\(cluster)\"")
            }
            let keys = ca.trustedKeys
            guard !keys.ssh.isEmpty, !keys.tls.isEmpty else {
                throw TeleportError.badParameter("the \(side)'s \(type.rawValue) CA has no SSH key or no X.509 certificate")
            }
            for key in keys.ssh {
                guard (try? SSHPublicKey(authorizedKeyLine: key.publicKey)) != nil else {
                    throw TeleportError.badParameter("the \(side)'s \(type.rawValue) CA holds an SSH key that is not an authorized_keys line")
                }
            }
            for pair in keys.tls {
                guard (try? Certificate.fromPEM(pair.cert)) != nil else {
                    throw TeleportError.badParameter("the \(side)'s \(type.rawValue) CA holds a certificate that is not PEM X.509")
                }
            }
            result.append(CertAuthority(type: type, clusterName: cluster, activeKeys: keys.withoutSecrets))
        }
        return result
    }

    // MARK: root side

    /// Root side of a trust exchange (`POST /v1/trustedclusters/validate`, from this cluster's
    /// proxy): checks the `trusted_cluster` token and the leaf's CAs, spends the token, stores the
    /// leaf's user and host CAs and a `remote_cluster` record, and answers with this cluster's
    /// CAs sealed with the token. Every attempt is audited (`trusted_cluster.create`), never with
    /// the token.
    public func validateTrust(_ request: AuthAPI.ValidateTrustRequest) async throws -> AuthAPI.ValidateTrustResponse {
        var fields: [String: JSONValue] = [
            "cluster_name": .string(String(request.leafClusterName.prefix(253))), "role": "root",
            "addr.remote": .string(request.remoteAddress ?? "unknown"),
        ]
        do {
            try ResourceName.validate(request.leafClusterName, kind: "leaf_cluster_name")
            if let expected = request.rootClusterName, expected != clusterName {
                throw TeleportError.badParameter(
                    "this root cluster is called \"\(clusterName)\", not \"\(String(expected.prefix(253)))\": name the trusted_cluster "
                        + "resource after the root cluster (metadata.name: \(clusterName)); the token was not spent")
            }
            guard request.leafClusterName != clusterName else {
                throw TeleportError.badParameter("a cluster cannot trust itself (the leaf is also called \(clusterName))")
            }
            // The token is checked first (its kind and validity), but spent only once everything
            // else passed, so that a malformed request does not burn it.
            _ = try await tokens.validate(request.token, for: .trustedCluster)
            let leafCAs = try Self.checkExchanged(request.certAuthorities, cluster: request.leafClusterName, side: "leaf")
            if (try? await remoteClusters.get(request.leafClusterName)) != nil {
                throw TeleportError.alreadyExists(
                    "leaf cluster \(request.leafClusterName) is already trusted; remove it first with tctl rm rc/\(request.leafClusterName)")
            }
            try await tokens.spend(request.token, for: .trustedCluster)
            for ca in leafCAs { try await trustedAuthorityStore(request.leafClusterName).upsert(ca) }
            try await remoteClusters.upsert(RemoteCluster(name: request.leafClusterName))
            let mine = try await exchangeableAuthorities()
            let seal = TrustExchangeSeal.seal(
                token: request.token, rootCluster: clusterName, leafCluster: request.leafClusterName, certAuthorities: mine)
            fields["success"] = true
            try await emit(AuditEventType.trustedClusterCreate, fields: fields)
            logger.info("a leaf cluster established trust", metadata: ["tp.cluster": "\(request.leafClusterName)"])
            return AuthAPI.ValidateTrustResponse(clusterName: clusterName, certAuthorities: mine, seal: seal)
        } catch let error as TeleportError {
            fields["success"] = false
            fields["error"] = .string(error.message)
            try? await emit(AuditEventType.trustedClusterCreateFailure, fields: fields)
            logger.warning("a leaf cluster's trust request was refused", metadata: ["tp.error": "\(error.message)"])
            throw error
        }
    }

    /// Root side: `tctl rm rc/NAME` removes the leaf's record and CAs (the trust ends).
    public func removeRemoteCluster(_ name: String, by user: String) async throws {
        try await remoteClusters.delete(name)
        try await forgetTrustedAuthorities(cluster: name)
        try await emit(
            AuditEventType.trustedClusterDelete, fields: ["cluster_name": .string(name), "role": "root", "user": .string(user)])
    }

    // MARK: leaf side

    /// Leaf side: stores a `trusted_cluster`, first establishing the trust when it is new (or a
    /// token is given): the root proxy at `spec.web_proxy_addr` gets the token and this cluster's
    /// CAs, and its answer counts only when its seal, keyed by the token, verifies and it names
    /// the root as `metadata.name` does. The root's user and host CAs are then stored; the
    /// resource is stored without its token. Without a token, an existing trust is updated
    /// (`enabled`, `role_map`, addresses) with no exchange.
    public func putTrustedCluster(_ trusted: TrustedCluster, upsert: Bool, by user: String) async throws -> TrustedCluster {
        try trusted.validate()
        guard trusted.name != clusterName else {
            throw TeleportError.badParameter("trusted_cluster \(trusted.name): metadata.name is this cluster's own name; name the root cluster")
        }
        let existing = try? await trustedClusters.get(trusted.name)
        if existing != nil, !upsert {
            throw TeleportError.alreadyExists("trusted_cluster \"\(trusted.name)\" already exists (use tctl create -f to overwrite); nothing was written")
        }
        let haveCAs = try await trustedAuthority(cluster: trusted.name, type: .user) != nil
        let token = trusted.spec.token ?? ""
        var fields: [String: JSONValue] = ["cluster_name": .string(trusted.name), "role": "leaf", "user": .string(user)]
        if !token.isEmpty {
            do {
                try await exchange(trusted, token: token)
            } catch let error as TeleportError {
                fields["success"] = false
                fields["error"] = .string(error.message)
                try? await emit(AuditEventType.trustedClusterCreateFailure, fields: fields)
                throw error
            }
        } else if !haveCAs {
            throw TeleportError.badParameter(
                "trusted_cluster \(trusted.name): spec.token is missing; ask the root's administrator for one "
                    + "(tctl tokens add --type=trusted_cluster --ttl=15m)")
        }
        let stored = trusted.withoutToken
        try await trustedClusters.upsert(stored)
        fields["success"] = true
        fields["enabled"] = .bool(trusted.spec.enabled)
        try await emit(token.isEmpty ? AuditEventType.trustedClusterUpdate : AuditEventType.trustedClusterCreate, fields: fields)
        return try await trustedClusters.get(trusted.name)
    }

    /// The exchange itself (leaf side).
    func exchange(_ trusted: TrustedCluster, token: String) async throws {
        let request = AuthAPI.ValidateTrustRequest(
            token: token, leafClusterName: clusterName, certAuthorities: try await exchangeableAuthorities(), rootClusterName: trusted.name)
        let answer = try await TrustExchangeClient.validate(webProxyAddr: trusted.spec.webProxyAddr, request: request)
        guard TrustExchangeSeal.verify(
            answer.seal, token: token, rootCluster: answer.clusterName, leafCluster: clusterName, certAuthorities: answer.certAuthorities)
        else {
            throw TeleportError.accessDenied(
                "the answer from \(trusted.spec.webProxyAddr) is not vouched for by the token (its seal does not verify): "
                    + "it is not the cluster that made the token, or something in between changed it; nothing was trusted")
        }
        guard answer.clusterName == trusted.name else {
            throw TeleportError.badParameter(
                "trusted_cluster \(trusted.name): the root at \(trusted.spec.webProxyAddr) is cluster \"\(answer.clusterName)\"; "
                    + "metadata.name must be the root's cluster name (the root now lists this cluster: remove it there with tctl rm rc/\(clusterName))")
        }
        let rootCAs = try Self.checkExchanged(answer.certAuthorities, cluster: answer.clusterName, side: "root")
        for ca in rootCAs { try await trustedAuthorityStore(answer.clusterName).upsert(ca) }
        logger.info("established trust with a root cluster", metadata: ["tp.cluster": "\(answer.clusterName)"])
    }

    /// Leaf side: `tctl rm tc/NAME` removes the trust and the root's CAs.
    public func removeTrustedCluster(_ name: String, by user: String) async throws {
        try await trustedClusters.delete(name)
        try await forgetTrustedAuthorities(cluster: name)
        try await emit(
            AuditEventType.trustedClusterDelete, fields: ["cluster_name": .string(name), "role": "leaf", "user": .string(user)])
    }

    /// Leaf side: the root's user CA, when a trusted cluster names `cluster` and is enabled; nil
    /// otherwise (a disabled or removed trust accepts nobody).
    public func enabledRootUserAuthority(cluster: String) async throws -> (TrustedCluster, CertAuthority)? {
        guard let trusted = try? await trustedClusters.get(cluster), trusted.spec.enabled,
            let ca = try await trustedAuthority(cluster: cluster, type: .user)
        else { return nil }
        return (trusted, ca)
    }

    // MARK: listing

    /// `tctl auth ls`: this cluster's CAs and the other clusters' CAs it trusts.
    public func authorityListing() async throws -> AuthAPI.AuthoritiesResponse {
        func fingerprints(_ ca: CertAuthority) -> [String] {
            let keys = ca.trustedKeys
            if !keys.ssh.isEmpty {
                return keys.ssh.compactMap { try? SSHPublicKey(authorizedKeyLine: $0.publicKey).fingerprintSHA256 }
            }
            return keys.tls.compactMap { pair in (try? Certificate.fromPEM(pair.cert)).map { "X.509 serial \($0.serialNumber)" } }
        }
        var local: [AuthAPI.AuthorityListing] = []
        for type in CertAuthority.CAType.allCases {
            guard let ca = try? await certAuthority(type) else { continue }
            local.append(.init(clusterName: clusterName, type: type.rawValue, fingerprints: fingerprints(ca)))
        }
        var trusted: [AuthAPI.AuthorityListing] = []
        for ca in try await allTrustedAuthorities().sorted(by: { ($0.spec.clusterName, $0.spec.type.rawValue) < ($1.spec.clusterName, $1.spec.type.rawValue) }) {
            var mapped: String?
            if ca.spec.type == .user, let tc = try? await trustedClusters.get(ca.spec.clusterName) {
                mapped = tc.spec.roleMap.map { "\($0.remote) -> \($0.local.joined(separator: ","))" }.joined(separator: "; ")
                if !tc.spec.enabled { mapped = "(disabled) " + (mapped ?? "") }
            }
            trusted.append(.init(clusterName: ca.spec.clusterName, type: ca.spec.type.rawValue, fingerprints: fingerprints(ca), mappedRoles: mapped))
        }
        return AuthAPI.AuthoritiesResponse(clusterName: clusterName, local: local, trusted: trusted)
    }
}
