public import Crypto
public import Foundation
public import TeleportAPI
public import TeleportCrypto

/// A user's credentials after login: the SSH and TLS private keys, their certificates, the
/// cluster's CA certificates and the known_hosts lines that trust its host CA. Kept in a profile
/// (``ProfileStore``) or an identity file (``IdentityFile``); all text, as the files hold it.
public struct ClientKey: Sendable, Equatable {
    /// The SSH private key, `-----BEGIN OPENSSH PRIVATE KEY-----` (Ed25519).
    public var sshKeyPEM: String
    /// The TLS private key, PKCS#8 `-----BEGIN PRIVATE KEY-----` (ECDSA P-256).
    public var tlsKeyPEM: String
    /// The SSH certificate, one `ssh-ed25519-cert-v01@openssh.com AAAA...` line.
    public var sshCertificate: String
    /// The X.509 client certificate, PEM.
    public var tlsCertificatePEM: String
    /// The cluster's X.509 CA certificates, PEM, one per element.
    public var caPEMs: [String]
    /// `@cert-authority ...` known_hosts lines.
    public var knownHosts: [String]

    /// Creates credentials.
    public init(
        sshKeyPEM: String, tlsKeyPEM: String, sshCertificate: String, tlsCertificatePEM: String, caPEMs: [String],
        knownHosts: [String]
    ) {
        self.sshKeyPEM = sshKeyPEM
        self.tlsKeyPEM = tlsKeyPEM
        self.sshCertificate = sshCertificate
        self.tlsCertificatePEM = tlsCertificatePEM
        self.caPEMs = caPEMs
        self.knownHosts = knownHosts
    }

    /// Combines freshly generated keys with the certificates a login returned.
    public init(keys: ClientKeyPair, login: AuthAPI.LoginResponse) {
        self.init(
            sshKeyPEM: keys.sshKeyPEM, tlsKeyPEM: keys.tlsKeyPEM,
            sshCertificate: login.sshCertificate.trimmingCharacters(in: .whitespacesAndNewlines),
            tlsCertificatePEM: login.tlsCertificatePEM, caPEMs: login.tlsCAPEMs,
            knownHosts: login.knownHosts.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
    }

    /// The SSH private key.
    public func sshPrivateKey() throws -> OpenSSHPrivateKey {
        try OpenSSHPrivateKey(pemRepresentation: sshKeyPEM)
    }

    /// The parsed SSH certificate (its CA signature verified against the key inside it).
    public func parsedSSHCertificate() throws -> SSHCertificate {
        try SSHCertificate(authorizedKeyLine: sshCertificate)
    }

    /// The SSH public key line (the `.pub` file).
    public func sshPublicKeyLine() throws -> String {
        try sshPrivateKey().publicKey.authorizedKeyLine()
    }
}

/// The two key pairs `tsh login` generates: Ed25519 for SSH, ECDSA P-256 for TLS.
public struct ClientKeyPair: Sendable {
    /// The SSH key.
    public let ssh: Curve25519.Signing.PrivateKey
    /// The TLS key.
    public let tls: P256.Signing.PrivateKey
    /// The comment written into the SSH key file.
    public let comment: String

    /// Generates fresh keys.
    public init(comment: String = "") {
        self.init(ssh: Curve25519.Signing.PrivateKey(), tls: P256.Signing.PrivateKey(), comment: comment)
    }

    /// Wraps given keys (tests).
    public init(ssh: Curve25519.Signing.PrivateKey, tls: P256.Signing.PrivateKey, comment: String = "") {
        self.ssh = ssh
        self.tls = tls
        self.comment = comment
    }

    /// The OpenSSH private key file.
    public var sshKeyPEM: String { OpenSSHPrivateKey(.ed25519(ssh), comment: comment).pemRepresentation() }
    /// The SSH public key, an authorized_keys line.
    public var sshPublicKeyLine: String { SSHPublicKey.ed25519(ssh.publicKey).authorizedKeyLine() }
    /// The TLS private key, PKCS#8 PEM.
    public var tlsKeyPEM: String { tls.pemRepresentation + "\n" }
    /// The TLS public key, SubjectPublicKeyInfo PEM.
    public var tlsPublicKeyPEM: String { tls.publicKey.pemRepresentation + "\n" }

    /// Proof that the login request comes from the holder of both keys: their signatures over
    /// the user name, both public keys and `now` (the auth service refuses a login without it).
    public func proof(for user: String, now: Date, purpose: LoginProof.Purpose = .login) throws -> AuthAPI.KeyProof {
        try LoginProof.sign(purpose: purpose, user: user, sshKey: ssh, tlsKey: tls, now: now)
    }
}
