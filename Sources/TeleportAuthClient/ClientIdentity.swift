public import Foundation
public import TeleportAPI
import SwiftASN1
import X509

/// What a client presents to the auth API: a private key, its certificate and the CA certificates
/// it trusts for the server, all PEM. Loaded from files 0600 in a data_dir or a profile.
public struct ClientIdentity: Sendable {
    /// The private key, PKCS#8 PEM.
    public var keyPEM: String
    /// The certificate, PEM.
    public var certificatePEM: String
    /// The CA certificates that may sign the server's certificate, PEM.
    public var trustedCAPEMs: [String]

    /// Creates an identity.
    public init(keyPEM: String, certificatePEM: String, trustedCAPEMs: [String]) {
        self.keyPEM = keyPEM
        self.certificatePEM = certificatePEM
        self.trustedCAPEMs = trustedCAPEMs
    }

    /// Reads `<dir>/<name>.key`, `<dir>/<name>.crt` and `<dir>/ca.crt`.
    public static func load(directory: URL, name: String) throws -> ClientIdentity {
        func read(_ file: String) throws -> String {
            let url = directory.appendingPathComponent(file)
            guard FileManager.default.isReadableFile(atPath: url.path),
                let text = try? String(contentsOf: url, encoding: .utf8)
            else {
                if FileManager.default.fileExists(atPath: url.path) {
                    throw TeleportError.accessDenied("cannot read \(url.path): permission denied (run as the user that runs teleport, e.g. with sudo)")
                }
                throw TeleportError.notFound("\(url.path) does not exist")
            }
            return text
        }
        return ClientIdentity(
            keyPEM: try read("\(name).key"), certificatePEM: try read("\(name).crt"), trustedCAPEMs: [try read("ca.crt")])
    }

    /// Like ``load(directory:name:)``, but the key and the certificate must belong together: a
    /// process renewing the identity (a CA rotation) renames the new key into place, then the new
    /// certificate, so a reader between the two sees a pair that does not match. That is read
    /// again (at most `attempts` times, `pause` apart: 10 s by default, as a heavily loaded machine
    /// took more than a second between the two renames) until it matches.
    public static func loadPair(directory: URL, name: String, attempts: Int = 200, pause: TimeInterval = 0.05) throws -> ClientIdentity {
        var identity = try load(directory: directory, name: name)
        for _ in 1..<max(attempts, 1) where !identity.keyMatchesCertificate {
            Thread.sleep(forTimeInterval: pause)
            identity = try load(directory: directory, name: name)
        }
        return identity
    }

    /// Whether the certificate's public key is the private key's (true when either cannot be
    /// read: the TLS set-up then names the problem).
    public var keyMatchesCertificate: Bool {
        guard let key = try? Certificate.PrivateKey(pemEncoded: keyPEM), let certificate = try? Certificate(pemEncoded: certificatePEM) else {
            return true
        }
        return key.publicKey == certificate.publicKey
    }

    /// Writes the identity as `<dir>/<name>.key` (0600), `<dir>/<name>.crt` and `<dir>/ca.crt` (0600),
    /// each through a temporary file renamed into place so a crash leaves no half-written file.
    public func save(directory: URL, name: String) throws {
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try SecureFile.write(Data(keyPEM.utf8), to: directory.appendingPathComponent("\(name).key"))
        try SecureFile.write(Data(certificatePEM.utf8), to: directory.appendingPathComponent("\(name).crt"))
        try SecureFile.write(Data(trustedCAPEMs.joined().utf8), to: directory.appendingPathComponent("ca.crt"))
    }
}

/// Writes files atomically with mode 0600.
public enum SecureFile {
    /// Writes `data` to `url` via a temporary file in the same directory (created 0600), then renames.
    public static func write(_ data: Data, to url: URL, mode: Int = 0o600) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil, attributes: [.posixPermissions: mode]) else {
            throw TeleportError.connectionProblem("cannot write \(url.path): the directory is not writable")
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            try handle.write(contentsOf: data)
            try handle.synchronize()
            try handle.close()
            if rename(temporary.path, url.path) != 0 {
                throw TeleportError.connectionProblem("cannot write \(url.path): rename failed (errno \(errno))")
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
