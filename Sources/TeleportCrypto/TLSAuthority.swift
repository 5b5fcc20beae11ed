public import Crypto
public import Foundation
public import TeleportAPI
public import X509
import SwiftASN1

/// An X.509 certificate authority (ECDSA P-256): creates itself and issues leaf certificates that
/// carry an ``X509Identity``.
public struct TLSAuthority: Sendable {
    /// The CA certificate.
    public let certificate: Certificate
    /// The CA's signing key.
    public let privateKey: P256.Signing.PrivateKey

    /// Wraps an existing CA.
    public init(certificate: Certificate, privateKey: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.privateKey = privateKey
    }

    /// Loads a CA from its PEM certificate and PKCS#8 PEM key.
    public init(certificatePEM: String, keyPEM: String) throws {
        do {
            certificate = try Certificate.fromPEM(certificatePEM)
            privateKey = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
        } catch {
            throw TeleportError.badParameter("the CA key pair cannot be read: \(error)")
        }
    }

    /// Creates a new self-signed CA named after the cluster and the CA type, valid for `validity` seconds.
    public static func generate(
        clusterName: String, type: String, clock: any WallClock, validity: TimeInterval = 10 * 365 * 86400
    ) throws -> TLSAuthority {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName(clusterName)
            OrganizationalUnitName("\(type) CA")
            CommonName(clusterName)
        }
        let now = clock.now()
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-60),
            notValidAfter: now.addingTimeInterval(validity),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
            },
            issuerPrivateKey: .init(key)
        )
        return TLSAuthority(certificate: certificate, privateKey: key)
    }

    /// The CA certificate as PEM.
    public var certificatePEM: String {
        get throws { try certificate.pemText() }
    }

    /// The private key as PKCS#8 PEM.
    public var keyPEM: String { privateKey.pemRepresentation + "\n" }

    /// The names a leaf certificate is valid for as a server.
    public struct ServerNames: Sendable {
        /// DNS names.
        public var dnsNames: [String]
        /// IP addresses.
        public var ipAddresses: [String]
        /// Creates names.
        public init(dnsNames: [String] = [], ipAddresses: [String] = []) {
            self.dnsNames = dnsNames
            self.ipAddresses = ipAddresses
        }

        /// The subject alternative names of `certificate` (for issuing it again with new keys).
        public init(of certificate: Certificate) {
            self.init()
            for name in (try? certificate.extensions.subjectAlternativeNames) ?? SubjectAlternativeNames() {
                switch name {
                case .dnsName(let dns): dnsNames.append(dns)
                case .ipAddress(let bytes): if let text = IPAddressBytes.format(Array(bytes.bytes)) { ipAddresses.append(text) }
                default: break
                }
            }
        }

        /// True when there is no name.
        public var isEmpty: Bool { dnsNames.isEmpty && ipAddresses.isEmpty }
    }

    /// The DNS names and IP addresses of `serverNames` as subject alternative names (unparsable
    /// addresses are skipped).
    static func subjectAlternativeNames(_ serverNames: ServerNames?) -> [GeneralName] {
        var names: [GeneralName] = []
        for dns in serverNames?.dnsNames ?? [] { names.append(.dnsName(dns)) }
        for ip in serverNames?.ipAddresses ?? [] {
            if let bytes = IPAddressBytes.parse(ip) { names.append(.ipAddress(ASN1OctetString(contentBytes: bytes[...]))) }
        }
        return names
    }

    /// Issues a leaf certificate for `publicKey` carrying `identity`, usable as a TLS client and, with
    /// `serverNames`, as a TLS server.
    public func issue(
        publicKey: P256.Signing.PublicKey, identity: X509Identity, serverNames: ServerNames? = nil,
        validity: TimeInterval, clock: any WallClock
    ) throws -> Certificate {
        let now = clock.now()
        let notAfter = min(now.addingTimeInterval(validity), certificate.notValidAfter)
        let sans = Self.subjectAlternativeNames(serverNames)
        return try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(publicKey),
            notValidBefore: now.addingTimeInterval(-60),
            notValidAfter: notAfter,
            issuer: certificate.subject,
            subject: try identity.distinguishedName(),
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                AuthorityKeyIdentifier(keyIdentifier: try certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
                if !sans.isEmpty { SubjectAlternativeNames(sans) }
            },
            issuerPrivateKey: .init(privateKey)
        )
    }

    /// Issues a certificate for a database (the database CA): the subject is `CN=commonName` only
    /// (PostgreSQL's `cert` authentication and MariaDB's `REQUIRE SUBJECT '/CN=NAME'` compare
    /// it); with `serverNames` it is a server certificate valid for those names, otherwise a
    /// client certificate.
    public func issueDatabase(
        publicKey: P256.Signing.PublicKey, commonName: String, serverNames: ServerNames?, validity: TimeInterval, clock: any WallClock
    ) throws -> Certificate {
        let now = clock.now()
        let notAfter = min(now.addingTimeInterval(validity), certificate.notValidAfter)
        let sans = Self.subjectAlternativeNames(serverNames)
        let usages: [ExtendedKeyUsage.Usage] = serverNames == nil ? [.clientAuth] : [.serverAuth, .clientAuth]
        return try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(publicKey),
            notValidBefore: now.addingTimeInterval(-60),
            notValidAfter: notAfter,
            issuer: certificate.subject,
            subject: try DistinguishedName { CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage(usages)
                AuthorityKeyIdentifier(keyIdentifier: try certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
                if !sans.isEmpty { SubjectAlternativeNames(sans) }
            },
            issuerPrivateKey: .init(privateKey)
        )
    }

    /// A certificate for the CA certificate `other`'s key and subject, signed by this CA (a
    /// cross-signature: a host that trusts only this CA can check that `other` belongs to the same
    /// cluster, as during a rotation the old CA vouches for the new one). Valid as long as both are.
    public func crossSign(_ other: Certificate) throws -> Certificate {
        try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: other.publicKey,
            notValidBefore: max(other.notValidBefore, certificate.notValidBefore),
            notValidAfter: min(other.notValidAfter, certificate.notValidAfter),
            issuer: certificate.subject,
            subject: other.subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true))
            },
            issuerPrivateKey: .init(privateKey))
    }

    /// The CA certificates of `candidates` a CA of `trusted` vouches for: those already trusted,
    /// and those whose key and subject a cross-signature in `crossSigned` (see ``crossSign(_:)``)
    /// by a trusted CA carries. Anything else is left out.
    public static func vouched(candidates: [Certificate], crossSigned: [Certificate], trusted: [Certificate]) -> [Certificate] {
        candidates.filter { candidate in
            if trusted.contains(candidate) { return true }
            return crossSigned.contains { cross in
                cross.publicKey == candidate.publicKey && cross.subject == candidate.subject
                    && trusted.contains { $0.subject == cross.issuer && $0.publicKey.isValidSignature(cross.signature, for: cross) }
            }
        }
    }

    /// True when `leaf` carries a valid signature of this CA.
    public func signed(_ leaf: Certificate) -> Bool {
        certificate.publicKey.isValidSignature(leaf.signature, for: leaf)
    }
}

/// Parses textual IP addresses into their network bytes.
public enum IPAddressBytes {
    /// 4 bytes for IPv4, 16 for IPv6, `nil` when not an address.
    public static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    /// The text of 4 (IPv4) or 16 (IPv6) address bytes; `nil` for another length.
    public static func format(_ bytes: [UInt8]) -> String? {
        let family: Int32
        switch bytes.count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return nil
        }
        var buffer = [CChar](repeating: 0, count: 64)
        let ok = bytes.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil }
        guard ok else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension TLSAuthority {
    /// A self-signed server certificate (for the proxy's HTTPS listener when no key pair is
    /// configured); returns the certificate and the PKCS#8 key, PEM.
    public static func selfSignedServer(
        commonName: String, names: ServerNames, clock: any WallClock, validity: TimeInterval = 365 * 86400
    ) throws -> (certificatePEM: String, keyPEM: String) {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName("Teleport self-signed")
            CommonName(commonName)
        }
        var sans: [GeneralName] = names.dnsNames.map { .dnsName($0) }
        for ip in names.ipAddresses {
            if let bytes = IPAddressBytes.parse(ip) { sans.append(.ipAddress(ASN1OctetString(contentBytes: bytes[...]))) }
        }
        let allNames = sans
        let now = clock.now()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-60), notValidAfter: now.addingTimeInterval(validity),
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(allNames)
            },
            issuerPrivateKey: .init(key))
        return (try certificate.pemText(), key.pemRepresentation)
    }
}
