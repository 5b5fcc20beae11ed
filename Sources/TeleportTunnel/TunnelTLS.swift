public import NIOSSL
public import TeleportAPI
import TeleportCrypto
import X509

/// The mutual TLS of reverse tunnels: the agent presents its host certificate (role `Node`), the
/// proxy its own (role `Proxy`); each verifies the other against the cluster's host CA and reads
/// the role and cluster name from the certificate's subject (``X509Identity``).
public enum TunnelTLS {
    /// The ALPN protocol of a reverse tunnel on the proxy's web port.
    public static let alpnProtocol = "teleport-reversetunnel"

    /// The proxy's mTLS server context: its identity, a required client certificate verified
    /// against `trustedCAPEMs` (the host CA), ALPN ``alpnProtocol``.
    public static func serverTLSContext(certificatePEM: String, keyPEM: String, trustedCAPEMs: [String]) throws -> NIOSSLContext {
        do {
            var tls = TLSConfiguration.makeServerConfiguration(certificateChain: [], privateKey: .privateKey(try key(keyPEM)))
            try mutual(&tls, certificatePEM: certificatePEM, keyPEM: keyPEM, trustedCAPEMs: trustedCAPEMs)
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw TeleportError.badParameter("the proxy's tunnel identity cannot be loaded (data_dir/keys/proxy.*): \(error)")
        }
    }

    /// The agent's mTLS client context: its host identity; the proxy's certificate is verified
    /// against the host CA (not against a host name: the role check names the proxy).
    public static func clientTLSContext(certificatePEM: String, keyPEM: String, trustedCAPEMs: [String]) throws -> NIOSSLContext {
        do {
            var tls = TLSConfiguration.makeClientConfiguration()
            try mutual(&tls, certificatePEM: certificatePEM, keyPEM: keyPEM, trustedCAPEMs: trustedCAPEMs)
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw TeleportError.badParameter("the node's tunnel identity cannot be loaded (data_dir/keys/node.*): \(error)")
        }
    }

    /// What both ends set alike: their identity, the host CA as the only trust root (no host-name
    /// check: the role and cluster in the peer's subject are checked after the handshake), TLS 1.2
    /// or later, ALPN ``alpnProtocol``.
    private static func mutual(_ tls: inout TLSConfiguration, certificatePEM: String, keyPEM: String, trustedCAPEMs: [String]) throws {
        tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)).map { .certificate($0) }
        tls.privateKey = .privateKey(try key(keyPEM))
        tls.trustRoots = .certificates(try trustedCAPEMs.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) })
        tls.certificateVerification = .noHostnameVerification
        tls.minimumTLSVersion = .tlsv12
        tls.applicationProtocols = [alpnProtocol]
    }

    private static func key(_ pem: String) throws -> NIOSSLPrivateKey {
        try NIOSSLPrivateKey(bytes: Array(pem.utf8), format: .pem)
    }

    /// The host UUID of a verified peer certificate that must carry `role` for `clusterName`;
    /// throws `accessDenied` with a one-line reason otherwise (a user certificate, another
    /// cluster, another role).
    public static func hostUUID(of certificate: NIOSSLCertificate?, role: SystemRole, clusterName: String) throws -> String {
        try hostUUID(of: certificate, roles: [role], clusterName: clusterName)
    }

    /// The host UUID in `certificate`, whose role must be one of `roles`.
    public static func hostUUID(of certificate: NIOSSLCertificate?, roles: Set<SystemRole>, clusterName: String) throws -> String {
        guard let certificate else {
            throw TeleportError.accessDenied("no certificate was presented; a tunnel needs the host's certificate (data_dir/keys)")
        }
        let identity: X509Identity
        do {
            identity = try X509Identity(certificate: try Certificate.fromDER(try certificate.toDERBytes()))
        } catch {
            throw TeleportError.accessDenied("the certificate cannot be read: \(error)")
        }
        guard identity.clusterName == clusterName else {
            throw TeleportError.accessDenied(
                "the certificate of \(identity.username) is for cluster \(identity.clusterName.debugDescription), not \(clusterName)")
        }
        guard let role = identity.systemRole, roles.contains(role) else {
            let what = identity.systemRole.map { "a \($0.rawValue) certificate" } ?? "a user certificate (\(identity.username))"
            let wanted = roles.map(\.rawValue).sorted().joined(separator: " or ")
            throw TeleportError.accessDenied("\(what) cannot open a tunnel; it needs a \(wanted) host certificate")
        }
        let suffix = "." + clusterName
        return identity.username.hasSuffix(suffix) ? String(identity.username.dropLast(suffix.count)) : identity.username
    }
}
