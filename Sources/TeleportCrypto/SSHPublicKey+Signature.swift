import Crypto
public import Foundation
import TeleportAPI

extension SSHPublicKey {
    /// Checks an SSH signature blob (`string algorithm, string signature`, RFC 4253 section 6.6) over
    /// `data` with this key.
    ///
    /// The algorithm in the blob must be this key's algorithm. For ECDSA the signature is the pair of
    /// `mpint`s r and s over SHA-256 of `data` (RFC 5656 section 3.1.2).
    ///
    /// - Returns: true only for a well-formed blob that verifies; false for anything else.
    public func isValidSignature(_ signatureBlob: some Sequence<UInt8>, for data: some DataProtocol) -> Bool {
        do {
            try verifySignature(signatureBlob, for: data)
            return true
        } catch {
            return false
        }
    }

    /// Checks an SSH signature blob over `data` like ``isValidSignature(_:for:)``, but throws.
    ///
    /// - Throws: ``TeleportError`` `badParameter` for a malformed blob or an algorithm mismatch,
    ///   `accessDenied` when the signature does not verify.
    public func verifySignature(_ signatureBlob: some Sequence<UInt8>, for data: some DataProtocol) throws {
        var reader = SSHWireReader(signatureBlob)
        let algorithm = try reader.readUTF8String()
        guard algorithm == algorithmName else {
            throw TeleportError.badParameter(
                "signature algorithm \(algorithm) does not match key type \(algorithmName)")
        }
        let signature = try reader.readString()
        try reader.expectEnd("SSH signature")
        let valid: Bool
        switch self {
        case .ed25519(let key):
            guard signature.count == 64 else {
                throw TeleportError.badParameter("Ed25519 signature must be 64 bytes, got \(signature.count)")
            }
            valid = key.isValidSignature(signature, for: data)
        case .ecdsaP256(let key):
            var inner = SSHWireReader(signature)
            let r = try inner.readUnsignedMPInt()
            let s = try inner.readUnsignedMPInt()
            try inner.expectEnd("ECDSA signature")
            guard r.count <= 32, s.count <= 32 else {
                throw TeleportError.badParameter("ECDSA P-256 signature component longer than 32 bytes")
            }
            let raw = Self.leftPadded(r, to: 32) + Self.leftPadded(s, to: 32)
            guard let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: raw) else {
                throw TeleportError.badParameter("malformed ECDSA P-256 signature")
            }
            valid = key.isValidSignature(ecdsa, for: data)
        }
        guard valid else {
            throw TeleportError.accessDenied("SSH signature does not verify with \(description)")
        }
    }

    static func leftPadded(_ bytes: [UInt8], to length: Int) -> [UInt8] {
        bytes.count >= length ? bytes : [UInt8](repeating: 0, count: length - bytes.count) + bytes
    }

    /// Encodes an Ed25519 signature as an SSH signature blob.
    static func signatureBlob(ed25519 signature: some DataProtocol) -> [UInt8] {
        var writer = SSHWireWriter()
        writer.writeString(ed25519AlgorithmName)
        writer.writeString(Array(signature))
        return writer.bytes
    }

    /// Encodes an ECDSA P-256 signature as an SSH signature blob.
    static func signatureBlob(p256 signature: P256.Signing.ECDSASignature) -> [UInt8] {
        let raw = Array(signature.rawRepresentation)
        var inner = SSHWireWriter()
        inner.writeUnsignedMPInt(raw.prefix(32))
        inner.writeUnsignedMPInt(raw.suffix(from: 32))
        var writer = SSHWireWriter()
        writer.writeString(ecdsaP256AlgorithmName)
        writer.writeString(inner.bytes)
        return writer.bytes
    }
}
