public import Foundation
import Crypto
import TeleportAPI
import TeleportCrypto
import X509

/// What a user's certificates say about them: read from the certificates themselves (never from a
/// profile's YAML, which anyone who can write the file could make lie), after checking that each
/// certificate belongs to its private key.
public struct CertificateFacts: Sendable, Equatable {
    /// The Teleport user (the X.509 common name).
    public var username: String
    /// The cluster that issued the certificates.
    public var clusterName: String
    /// The user's roles (X.509 organisations).
    public var roles: [String]
    /// The OS logins (the SSH certificate's principals).
    public var logins: [String]
    /// When the credentials start being valid.
    public var validAfter: Date
    /// When the first of the two certificates expires.
    public var validBefore: Date

    /// Creates facts.
    public init(username: String, clusterName: String, roles: [String], logins: [String], validAfter: Date, validBefore: Date) {
        self.username = username
        self.clusterName = clusterName
        self.roles = roles
        self.logins = logins
        self.validAfter = validAfter
        self.validBefore = validBefore
    }

    /// The parts of a ``ClientKey``, for naming the file at fault in errors.
    public enum Part: Sendable, CaseIterable {
        /// The SSH private key.
        case sshKey
        /// The SSH certificate.
        case sshCertificate
        /// The TLS private key.
        case tlsKey
        /// The X.509 certificate.
        case tlsCertificate
    }

    /// Reads the facts out of `key`.
    ///
    /// - Parameters:
    ///   - key: The credentials.
    ///   - source: Names where each part came from (a file path), for error messages.
    /// - Throws: ``TeleportError`` `badParameter` naming the part when one is unreadable or when a
    ///   certificate does not belong to its key.
    public init(key: ClientKey, source: (Part) -> String) throws {
        func fail(_ part: Part, _ what: String) -> TeleportError {
            TeleportError.badParameter("\(source(part)) \(what)")
        }
        let sshKey: OpenSSHPrivateKey
        do { sshKey = try key.sshPrivateKey() } catch { throw fail(.sshKey, "is not a readable OpenSSH private key (\(Self.text(error)))") }
        let sshCertificate: SSHCertificate
        do {
            sshCertificate = try key.parsedSSHCertificate()
        } catch {
            throw fail(.sshCertificate, "is not a valid SSH certificate (\(Self.text(error)))")
        }
        guard sshCertificate.type == .user else { throw fail(.sshCertificate, "is a host certificate, not a user certificate") }
        guard sshCertificate.publicKey == sshKey.publicKey else {
            throw fail(.sshCertificate, "does not certify the SSH private key \(source(.sshKey)) (keys from different logins?)")
        }
        let tlsKey: P256.Signing.PrivateKey
        do {
            tlsKey = try P256.Signing.PrivateKey(pemRepresentation: key.tlsKeyPEM)
        } catch {
            throw fail(.tlsKey, "is not a readable ECDSA P-256 private key (\(error))")
        }
        let certificate: Certificate
        let identity: X509Identity
        do {
            certificate = try Certificate.fromPEM(key.tlsCertificatePEM)
            identity = try X509Identity(certificate: certificate)
        } catch {
            throw fail(.tlsCertificate, "is not a valid X.509 user certificate (\(Self.text(error)))")
        }
        guard certificate.publicKey == Certificate.PublicKey(tlsKey.publicKey) else {
            throw fail(.tlsCertificate, "does not certify the TLS private key \(source(.tlsKey)) (keys from different logins?)")
        }
        self.init(
            username: identity.username, clusterName: identity.clusterName, roles: identity.roles,
            // The placeholder a certificate carries when the roles allow no login is not one.
            logins: sshCertificate.validPrincipals.filter { !$0.hasPrefix("-teleport-nologin-") },
            validAfter: max(sshCertificate.validAfter, certificate.notValidBefore),
            validBefore: min(sshCertificate.validBefore, certificate.notValidAfter))
    }

    /// True when the credentials have expired at `now`.
    public func isExpired(at now: Date) -> Bool { now >= validBefore }

    static func text(_ error: any Error) -> String {
        (error as? TeleportError)?.message ?? "\(error)"
    }
}
