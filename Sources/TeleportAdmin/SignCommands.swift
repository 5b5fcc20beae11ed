public import Foundation
public import TeleportAPI
import Crypto
import TeleportAuthClient
import TeleportClient
import TeleportCrypto

/// `tctl auth sign`: certificates for automation (a user) or for an OpenSSH sshd (a host).
public enum SignCommands {
    /// Output formats.
    public enum Format: String, CaseIterable, Sendable {
        /// One identity file for `tsh -i` / `tctl -i`.
        case file
        /// `FILE` (private key) and `FILE-cert.pub`, for OpenSSH.
        case openssh
    }

    /// `tctl auth sign --user=NAME --out=FILE [--ttl] [--format]`: generates the keys here and
    /// signs the request with them (proof of possession, dated `now`).
    public static func signUser(
        _ options: AdminConnection.Options, user: String, out: String, ttl: String, format: Format, now: Date = Date()
    ) async throws -> String {
        guard let seconds = GoDuration.parse(ttl), seconds > 0 else {
            throw TeleportError.badParameter("--ttl=\(ttl) is not a duration such as 1h")
        }
        let signingKey = Curve25519.Signing.PrivateKey()
        let sshKey = OpenSSHPrivateKey(.ed25519(signingKey), comment: user)
        let tlsKey = P256.Signing.PrivateKey()
        let issued = try await AdminConnection.client(options).signUser(
            .init(
                user: user, sshPublicKey: sshKey.publicKey.authorizedKeyLine(comment: user),
                tlsPublicKeyPEM: tlsKey.publicKey.pemRepresentation, ttlSeconds: seconds,
                keyProof: try LoginProof.sign(purpose: .signUser, user: user, sshKey: signingKey, tlsKey: tlsKey, now: now)))
        switch format {
        case .file:
            try IdentityFile(
                sshKeyPEM: sshKey.pemRepresentation(), tlsKeyPEM: tlsKey.pemRepresentation, sshCertificate: issued.sshCertificate,
                tlsCertificatePEM: issued.tlsCertificatePEM, caPEMs: issued.tlsCAPEMs, knownHosts: issued.knownHosts
            ).write(path: out)
            return "The credentials have been written to \(out)\n"
        case .openssh:
            try write(sshKey.pemRepresentation(), to: out)
            try write(issued.sshCertificate + "\n", to: out + "-cert.pub", mode: 0o644)
            return "The credentials have been written to \(out), \(out)-cert.pub\n"
        }
    }

    /// `tctl auth sign --host=NAMES --out=FILE --format=openssh [--ttl]`.
    public static func signHost(_ options: AdminConnection.Options, hosts: String, out: String, ttl: String, format: Format) async throws -> String {
        guard format == .openssh else {
            throw TeleportError.badParameter("--host works with --format=openssh (a key and certificate for an OpenSSH sshd)")
        }
        guard let seconds = GoDuration.parse(ttl), seconds > 0 else {
            throw TeleportError.badParameter("--ttl=\(ttl) is not a duration such as 8760h")
        }
        let principals = hosts.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let key = OpenSSHPrivateKey(.ed25519(Curve25519.Signing.PrivateKey()), comment: principals.first ?? "host")
        let issued = try await AdminConnection.client(options).signHost(
            .init(principals: principals, sshPublicKey: key.publicKey.authorizedKeyLine(), ttlSeconds: seconds))
        try write(key.pemRepresentation(), to: out)
        try write(key.publicKey.authorizedKeyLine(comment: principals.first ?? "") + "\n", to: out + ".pub", mode: 0o644)
        try write(issued.sshCertificate + "\n", to: out + "-cert.pub", mode: 0o644)
        return "The credentials have been written to \(out), \(out).pub, \(out)-cert.pub\n"
    }

    static func write(_ text: String, to path: String, mode: Int = 0o600) throws {
        if FileManager.default.fileExists(atPath: path) {
            try? FileManager.default.removeItem(atPath: path)
        }
        try SecureFile.write(Data(text.utf8), to: URL(fileURLWithPath: path), mode: mode)
    }
}
