import Foundation
import TeleportAPI
public import TeleportAuthClient

/// An identity file: a user's credentials in one text file, as `tctl auth sign --format=file` and
/// `tsh login --out` write it and `tsh -i` reads it. In order:
///
/// 1. the SSH private key, `-----BEGIN OPENSSH PRIVATE KEY-----`;
/// 2. the TLS private key, PKCS#8 `-----BEGIN PRIVATE KEY-----` (ECDSA P-256);
/// 3. the SSH certificate line, `ssh-ed25519-cert-v01@openssh.com AAAA...`;
/// 4. the user's X.509 certificate, `-----BEGIN CERTIFICATE-----`;
/// 5. the cluster's CA certificates, `-----BEGIN CERTIFICATE-----` each;
/// 6. `@cert-authority ...` known_hosts lines.
///
/// The first non-OpenSSH private key, the first certificate and the CA certificates after it are
/// also what `tctl -i` reads, so one file serves both tools.
public struct IdentityFile: Sendable, Equatable {
    /// The SSH private key (OpenSSH format).
    public var sshKeyPEM: String
    /// The TLS private key (PKCS#8 PEM).
    public var tlsKeyPEM: String
    /// The SSH certificate line.
    public var sshCertificate: String
    /// The user's X.509 certificate (PEM).
    public var tlsCertificatePEM: String
    /// The cluster's CA certificates (PEM, one per element).
    public var caPEMs: [String]
    /// The known_hosts lines.
    public var knownHosts: [String]

    /// Creates an identity file's contents.
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

    /// The contents of `key`.
    public init(_ key: ClientKey) {
        self.init(
            sshKeyPEM: key.sshKeyPEM, tlsKeyPEM: key.tlsKeyPEM, sshCertificate: key.sshCertificate,
            tlsCertificatePEM: key.tlsCertificatePEM, caPEMs: key.caPEMs, knownHosts: key.knownHosts)
    }

    /// The credentials.
    public var clientKey: ClientKey {
        ClientKey(
            sshKeyPEM: sshKeyPEM, tlsKeyPEM: tlsKeyPEM, sshCertificate: sshCertificate, tlsCertificatePEM: tlsCertificatePEM,
            caPEMs: caPEMs, knownHosts: knownHosts)
    }

    /// The TLS identity for the auth API (what `tctl -i` uses).
    public var clientIdentity: ClientIdentity {
        ClientIdentity(keyPEM: tlsKeyPEM, certificatePEM: tlsCertificatePEM, trustedCAPEMs: caPEMs)
    }

    /// The file's text, in the order above, ending in a newline.
    public var text: String {
        var parts = [Self.block(sshKeyPEM), Self.block(tlsKeyPEM), sshCertificate.trimmingCharacters(in: .whitespacesAndNewlines) + "\n"]
        parts.append(Self.block(tlsCertificatePEM))
        parts.append(contentsOf: caPEMs.map(Self.block))
        parts.append(contentsOf: knownHosts.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) + "\n" })
        return parts.joined()
    }

    /// Parses an identity file.
    ///
    /// - Parameters:
    ///   - text: The file's contents.
    ///   - source: The file's name, for messages.
    /// - Throws: ``TeleportError`` `badParameter` naming `source` and the part that is missing or
    ///   not understood.
    public init(text: String, source: String = "the identity file") throws {
        var sshKey: String?
        var tlsKey: String?
        var certificateLine: String?
        var certificates: [String] = []
        var knownHosts: [String] = []
        var blockLines: [String] = []
        var blockLabel: String?
        for (index, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if let label = blockLabel {
                blockLines.append(line)
                guard line == "-----END \(label)-----" else { continue }
                let block = blockLines.joined(separator: "\n") + "\n"
                blockLabel = nil
                switch label {
                case "OPENSSH PRIVATE KEY":
                    guard sshKey == nil else { throw TeleportError.badParameter("\(source) holds two OpenSSH private keys") }
                    sshKey = block
                case "CERTIFICATE":
                    certificates.append(block)
                case _ where label.hasSuffix("PRIVATE KEY"):
                    guard tlsKey == nil else { throw TeleportError.badParameter("\(source) holds two TLS private keys") }
                    tlsKey = block
                default:
                    throw TeleportError.badParameter("\(source) holds a \(label) block, which an identity file does not have")
                }
            } else if let label = PEMBlock.beginLabel(line) {
                blockLabel = label
                blockLines = [line]
            } else if line.isEmpty || line.hasPrefix("#") {
                continue
            } else if line.hasPrefix("@cert-authority ") {
                knownHosts.append(line)
            } else if let type = line.split(separator: " ").first, type.hasSuffix("-cert-v01@openssh.com") {
                guard certificateLine == nil else { throw TeleportError.badParameter("\(source) holds two SSH certificates") }
                certificateLine = line
            } else {
                throw TeleportError.badParameter("\(source) line \(index + 1) is not part of an identity file")
            }
        }
        if let blockLabel { throw TeleportError.badParameter("\(source): the \(blockLabel) block has no END line") }
        guard let sshKey else { throw TeleportError.badParameter("\(source) has no OpenSSH private key (-----BEGIN OPENSSH PRIVATE KEY-----)") }
        guard let tlsKey else { throw TeleportError.badParameter("\(source) has no TLS private key (-----BEGIN PRIVATE KEY-----)") }
        guard let certificateLine else {
            throw TeleportError.badParameter("\(source) has no SSH certificate line (ssh-ed25519-cert-v01@openssh.com ...)")
        }
        guard let leaf = certificates.first else {
            throw TeleportError.badParameter("\(source) has no X.509 certificate (-----BEGIN CERTIFICATE-----)")
        }
        guard certificates.count >= 2 else {
            throw TeleportError.badParameter("\(source) has no CA certificates after the user's certificate")
        }
        self.init(
            sshKeyPEM: sshKey, tlsKeyPEM: tlsKey, sshCertificate: certificateLine, tlsCertificatePEM: leaf,
            caPEMs: Array(certificates.dropFirst()), knownHosts: knownHosts)
    }

    /// Reads and parses the file at `path`.
    public static func load(path: String) throws -> IdentityFile {
        guard FileManager.default.fileExists(atPath: path) else {
            throw TeleportError.notFound("the identity file \(path) does not exist")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TeleportError.accessDenied("cannot read the identity file \(path) (permissions?)")
        }
        return try IdentityFile(text: text, source: "the identity file \(path)")
    }

    /// Writes the file at `path`, 0600, through a temporary file and a rename.
    public func write(path: String) throws {
        try SecureFile.write(Data(text.utf8), to: URL(fileURLWithPath: path), mode: 0o600)
    }

    static func block(_ pem: String) -> String {
        let trimmed = pem.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed + "\n"
    }
}
