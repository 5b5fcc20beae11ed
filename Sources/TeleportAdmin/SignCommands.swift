public import Foundation
public import TeleportAPI
import Crypto
import TeleportAuthClient
import TeleportClient
import TeleportCrypto

/// `tctl auth sign`: certificates for automation (a user), for an OpenSSH sshd (a host) or for a
/// database (`--format=db`).
public enum SignCommands {
    /// Output formats.
    public enum Format: String, CaseIterable, Sendable {
        /// One identity file for `tsh -i` / `tctl -i`.
        case file
        /// `FILE` (private key) and `FILE-cert.pub`, for OpenSSH.
        case openssh
        /// `FILE.crt`, `FILE.key` and `FILE.cas` from the database CA, for PostgreSQL and MySQL/MariaDB.
        case db
    }

    /// `tctl auth sign --user=NAME --out=FILE [--ttl] [--format]`: generates the keys here and
    /// signs the request with them (proof of possession, dated `now`).
    public static func signUser(
        _ options: AdminConnection.Options, user: String, out: String, ttl: String, format: Format, now: Date = Date()
    ) async throws -> String {
        guard format != .db else {
            throw TeleportError.badParameter("--format=db with --user writes a database client certificate (SignCommands.signDatabase)")
        }
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
        case .db:
            // Refused above, before any key is certified.
            throw TeleportError.badParameter("--format=db with --user writes a database client certificate (SignCommands.signDatabase)")
        }
    }

    /// `tctl auth sign --host=NAMES --out=FILE --format=openssh [--ttl]`.
    public static func signHost(_ options: AdminConnection.Options, hosts: String, out: String, ttl: String, format: Format) async throws -> String {
        guard format == .openssh else {
            throw TeleportError.badParameter(
                "--host works with --format=openssh (an OpenSSH sshd) or --format=db (a database server)")
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

    /// `tctl auth sign --format=db (--host=NAMES | --user=NAME) --out=FILE [--ttl]`: generates a
    /// P-256 key here, proves possession to the auth service and writes `FILE.crt` (the
    /// certificate), `FILE.key` (PKCS#8, 0600) and `FILE.cas` (the database CA), which PostgreSQL
    /// (`ssl_cert_file`, `ssl_key_file`, `ssl_ca_file`) and MySQL/MariaDB (`ssl-cert`, `ssl-key`,
    /// `ssl-ca`) read; the same files work for their clients with a `--user` certificate.
    public static func signDatabase(
        _ options: AdminConnection.Options, hosts: String?, user: String?, out: String, ttl: String, now: Date = Date()
    ) async throws -> String {
        let usage: AuthAPI.SignDatabaseRequest.Usage
        var names: [String] = []
        switch (hosts, user) {
        case (let hosts?, nil):
            usage = .server
            names = hosts.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !names.isEmpty else {
                throw TeleportError.badParameter("--host is empty: pass the database server's names, e.g. --host=db.example.com,10.0.0.5")
            }
        case (nil, let user?):
            usage = .client
            guard !user.isEmpty else { throw TeleportError.badParameter("--user is empty: pass the database user, e.g. --user=alice") }
        case (nil, nil):
            throw TeleportError.badParameter(
                "--format=db needs --host=NAMES (a database server certificate) or --user=NAME (a database client certificate)")
        case (_?, _?):
            throw TeleportError.badParameter("--format=db takes either --host (a server certificate) or --user (a client certificate), not both")
        }
        guard !out.isEmpty else { throw TeleportError.badParameter("--out is empty: pass a file name prefix such as --out=server") }
        guard let seconds = GoDuration.parse(ttl), seconds > 0 else {
            throw TeleportError.badParameter("--ttl=\(ttl) is not a duration such as 2190h")
        }
        let key = P256.Signing.PrivateKey()
        let dbUser = usage == .client ? user : nil
        let issued = try await AdminConnection.client(options).signDatabase(
            .init(
                usage: usage, hosts: names, user: dbUser, publicKeyPEM: key.publicKey.pemRepresentation, ttlSeconds: seconds,
                keyProof: try DatabaseCertProof.sign(usage: usage, hosts: names, user: dbUser, key: key, now: now)))
        try write(key.pemRepresentation + "\n", to: out + ".key")
        try write(issued.certificatePEM, to: out + ".crt", mode: 0o644)
        try write(issued.caPEMs.joined(), to: out + ".cas", mode: 0o644)
        return "The database credentials have been written to \(out).crt, \(out).key, \(out).cas\n"
    }

    static func write(_ text: String, to path: String, mode: Int = 0o600) throws {
        if FileManager.default.fileExists(atPath: path) {
            try? FileManager.default.removeItem(atPath: path)
        }
        try SecureFile.write(Data(text.utf8), to: URL(fileURLWithPath: path), mode: mode)
    }
}
