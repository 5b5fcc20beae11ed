public import Crypto
public import Foundation
public import TeleportAPI
public import X509
import SwiftASN1

/// The CA pin: `sha256:` and the hex SHA-256 of a CA certificate's DER SubjectPublicKeyInfo — the
/// same value as `openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum`.
public enum CAPin {
    /// The pin of `certificate`.
    public static func pin(of certificate: Certificate) throws -> String {
        let spki = try subjectPublicKeyInfoDER(of: certificate)
        let digest = SHA256.hash(data: spki)
        return "sha256:" + digest.map { String(format: "%02x", $0) }.joined()
    }

    /// True when `pin` (with or without the `sha256:` prefix, any case) matches `certificate`.
    /// The comparison takes the same time wherever the strings differ.
    public static func matches(_ pin: String, certificate: Certificate) throws -> Bool {
        let expected = Array(try self.pin(of: certificate).utf8)
        var given = pin.lowercased()
        if !given.hasPrefix("sha256:") { given = "sha256:" + given }
        return ConstantTime.equal(expected, Array(given.utf8))
    }

    /// The DER bytes of the certificate's SubjectPublicKeyInfo (the 7th field of TBSCertificate).
    static func subjectPublicKeyInfoDER(of certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        let root = try DER.parse(serializer.serializedBytes)
        guard case .constructed(let top) = root.content,
            let tbs = top.first(where: { _ in true }),
            case .constructed(let fields) = tbs.content
        else {
            throw TeleportError.badParameter("the CA certificate is not well-formed DER")
        }
        // Fields: [0] version (explicitly tagged), serial, signature, issuer, validity, subject, spki.
        var items = Array(fields)
        if let first = items.first, first.identifier.tagClass == .contextSpecific { items.removeFirst() }
        guard items.count >= 6 else { throw TeleportError.badParameter("the CA certificate has no public key") }
        return Array(items[5].encodedBytes)
    }
}

/// Comparisons of secrets that do not leak where the inputs differ.
public enum ConstantTime {
    /// True when `lhs` and `rhs` are equal; time depends only on their lengths.
    public static func equal(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        var difference = UInt8(lhs.count == rhs.count ? 0 : 1)
        let count = max(lhs.count, rhs.count)
        for index in 0..<count {
            let left = index < lhs.count ? lhs[index] : 0
            let right = index < rhs.count ? rhs[index] : 0
            difference |= left ^ right
        }
        return difference == 0
    }

    /// String form of ``equal(_:_:)-([UInt8],[UInt8])``.
    public static func equal(_ lhs: String, _ rhs: String) -> Bool {
        equal(Array(lhs.utf8), Array(rhs.utf8))
    }
}

/// Hashes of secrets kept at rest (join tokens): SHA-256, hex.
public enum SecretHash {
    /// The hex SHA-256 of `secret`.
    public static func hex(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// A new random secret of `bytes` bytes, hex (32 hex characters for 16 bytes).
    public static func randomHex(bytes: Int = 16) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }
}
