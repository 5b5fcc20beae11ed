public import Crypto
public import Foundation
public import TeleportAPI
import Logging
import TeleportBackend
import TeleportCrypto
import TeleportServices
import X509

extension AuthServer {
    /// The host CA certificates, for joiners to check against their CA pin.
    public func hostCAPEMs() async throws -> [String] {
        try await certAuthority(.host).trustedKeys.tls.map(\.cert)
    }

    /// During a host CA rotation: every trusted host CA certificate cross-signed by each other
    /// one (``TLSAuthority/crossSign(_:)``); empty otherwise. A host down through `init` and
    /// `update_clients` checks the new CA with these and the CA it trusts.
    public func hostCACrossSigned() async throws -> [String] {
        let pairs = try await certAuthority(.host).trustedKeys.tls
        guard pairs.count > 1 else { return [] }
        var crossSigned: [String] = []
        for signer in pairs {
            guard let key = signer.key else { continue }
            let authority = try TLSAuthority(certificatePEM: signer.cert, keyPEM: key)
            for other in pairs where other.cert != signer.cert {
                crossSigned.append(try authority.crossSign(try Certificate.fromPEM(other.cert)).pemText())
            }
        }
        return crossSigned
    }

    /// Records a node's SSH host public key: the cluster vouches for exactly this key.
    public func recordHostKey(hostID: String, nodeName: String, publicKey: String) async throws {
        let key = try SSHPublicKey(authorizedKeyLine: publicKey)
        let record = AuthAPI.HostKey(hostID: hostID, nodeName: nodeName, publicKey: key.authorizedKeyLine(), fingerprint: key.fingerprintSHA256)
        try await stores.backend.put(Item(key: Keys.key("hostkeys", hostID), value: try ResourceCodec.json(record)))
    }

    /// Every registered host key.
    public func hostKeys() async throws -> [AuthAPI.HostKey] {
        try await stores.backend.getRange(prefix: Keys.key("hostkeys") + "/").map {
            try ResourceCodec.jsonDecoder().decode(AuthAPI.HostKey.self, from: $0.value)
        }
    }

    /// True when `hostUUID` already belongs to a joined host: it has a current Node or Proxy
    /// identity, or a registered SSH host key.
    func hostUUIDInUse(_ hostUUID: String) async throws -> Bool {
        if !(try await stores.backend.getRange(prefix: Keys.key("hostidentities", hostUUID) + "/")).isEmpty { return true }
        return (try? await stores.backend.get(Keys.key("hostkeys", hostUUID))) != nil
    }

    /// Admits a new host: checks the token for the requested role and issues the host's
    /// certificate from the host CA. Every attempt is audited (`node.join`), without the token.
    ///
    /// A UUID that already belongs to a joined host is refused unless the caller proves it is that
    /// host: `provenHostUUID` is the UUID of the current host identity the caller presented as its
    /// TLS client certificate (a host renewing its identity, or adding its second role). A token
    /// alone never takes over another host's UUID, its host key or its certificate.
    public func join(_ request: AuthAPI.JoinRequest, remoteAddress: String, provenHostUUID: String? = nil) async throws
        -> AuthAPI.JoinResponse
    {
        var fields: [String: JSONValue] = [
            "addr.remote": .string(remoteAddress), "host_id": .string(request.hostUUID), "node_name": .string(request.nodeName),
            "role": .string(request.role.rawValue),
        ]
        do {
            guard request.role == .node || request.role == .proxy || request.role == .db || request.role == .app || request.role == .kube else {
                throw TeleportError.badParameter("only node, proxy, db, app and kube hosts can join (asked for \(request.role.rawValue))")
            }
            guard UUID(uuidString: request.hostUUID) != nil, request.hostUUID == request.hostUUID.lowercased() else {
                throw TeleportError.badParameter("host_uuid \"\(request.hostUUID.prefix(64))\" is not a lower-case UUID")
            }
            try ResourceName.validate(request.nodeName, kind: "node_name")
            _ = try await tokens.validate(request.token, for: request.role)
            if provenHostUUID != request.hostUUID, try await hostUUIDInUse(request.hostUUID) {
                throw TeleportError.accessDenied(
                    "host_uuid \(request.hostUUID) already belongs to a joined host; a token cannot take it over "
                        + "(a new host needs its own UUID: remove data_dir/host_uuid; to re-join a removed host, "
                        + "free the UUID first with `tctl rm node/\(request.hostUUID)`)")
            }
            let publicKey: P256.Signing.PublicKey
            do {
                publicKey = try P256.Signing.PublicKey(pemRepresentation: request.tlsPublicKeyPEM)
            } catch {
                throw TeleportError.badParameter("tls_public_key is not an ECDSA P-256 public key in PEM form")
            }
            if let hostKey = request.sshHostPublicKey {
                try await recordHostKey(hostID: request.hostUUID, nodeName: request.nodeName, publicKey: hostKey)
            }
            var dns = [request.nodeName, "localhost"]
            // A proxy serves kubectl on its web port under this name (TLS routing by server name).
            if request.role == .proxy { dns.append(AuthAPI.kubeProxyServerName) }
            var ips = ["127.0.0.1", "::1"]
            for address in request.addresses where !address.isEmpty {
                if IPAddressBytes.parse(address) != nil { ips.append(address) } else { dns.append(address) }
            }
            let issued = try await issueSystemIdentity(
                role: request.role, hostID: "\(request.hostUUID).\(clusterName)", publicKey: publicKey,
                serverNames: .init(dnsNames: dns, ipAddresses: ips))
            fields["success"] = true
            try await emit(AuditEventType.nodeJoin, fields: fields)
            return AuthAPI.JoinResponse(clusterName: clusterName, certificatePEM: issued.certificatePEM, caPEMs: issued.caPEMs)
        } catch let error as TeleportError {
            fields["success"] = false
            fields["error"] = .string(error.message)
            try? await emit(AuditEventType.nodeJoinFailure, fields: fields)
            logger.warning("a host failed to join", metadata: ["tp.remote": "\(remoteAddress)", "tp.error": "\(error.message)"])
            throw error
        }
    }
}
