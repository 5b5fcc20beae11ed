public import Crypto
public import Foundation
import TeleportAPI

/// A plain (not certified) SSH public key of one of the algorithms the project uses.
///
/// The SSH encoding ("public key blob") is RFC 4253 section 6.6 for the framing, RFC 8709 for
/// Ed25519 and RFC 5656 for ECDSA. RSA is deliberately absent: swift-nio-ssh does not support it and
/// neither do we.
public enum SSHPublicKey: Sendable, Hashable, CustomStringConvertible {
    /// An Ed25519 key, `ssh-ed25519`.
    case ed25519(Curve25519.Signing.PublicKey)
    /// An ECDSA key on NIST P-256, `ecdsa-sha2-nistp256`.
    case ecdsaP256(P256.Signing.PublicKey)

    /// The SSH algorithm name of Ed25519 keys and signatures.
    public static let ed25519AlgorithmName = "ssh-ed25519"
    /// The SSH algorithm name of ECDSA P-256 keys and signatures.
    public static let ecdsaP256AlgorithmName = "ecdsa-sha2-nistp256"
    static let p256CurveName = "nistp256"

    /// The SSH algorithm name: `ssh-ed25519` or `ecdsa-sha2-nistp256`.
    public var algorithmName: String {
        switch self {
        case .ed25519: Self.ed25519AlgorithmName
        case .ecdsaP256: Self.ecdsaP256AlgorithmName
        }
    }

    /// The SSH public key blob: the algorithm name followed by the key's fields.
    public var wireBytes: Data {
        var writer = SSHWireWriter()
        writer.writeString(algorithmName)
        writeKeyFields(to: &writer)
        return Data(writer.bytes)
    }

    /// Parses an SSH public key blob.
    ///
    /// - Throws: ``TeleportError`` `badParameter` for truncated or trailing data, an unsupported
    ///   algorithm (including certificate types), or a point that is not on the curve.
    public init(wireBytes: some Sequence<UInt8>) throws {
        var reader = SSHWireReader(wireBytes)
        let algorithm = try reader.readUTF8String()
        self = try Self.readKeyFields(algorithm: algorithm, from: &reader)
        try reader.expectEnd("SSH public key")
    }

    /// The one-line form used in `authorized_keys` and `.pub` files: `type base64 [comment]`.
    ///
    /// - Parameter comment: Appended after one space when not empty.
    public func authorizedKeyLine(comment: String = "") -> String {
        SSHAuthorizedKeyLine.format(type: algorithmName, blob: wireBytes, comment: comment)
    }

    /// Parses a `type base64 [comment]` line, as `ssh-keygen` writes into `.pub` files.
    ///
    /// Options in front of the type (as `authorized_keys` allows) are not supported. The type word
    /// must match the algorithm inside the blob.
    public init(authorizedKeyLine line: String) throws {
        let parsed = try SSHAuthorizedKeyLine.parse(line)
        let key = try SSHPublicKey(wireBytes: parsed.blob)
        guard key.algorithmName == parsed.type else {
            throw TeleportError.badParameter(
                "SSH public key line says \(parsed.type) but the key inside is \(key.algorithmName)"
            )
        }
        self = key
    }

    /// The SHA-256 fingerprint exactly as `ssh-keygen -l` prints it: `SHA256:` and the unpadded
    /// base64 of the SHA-256 of ``wireBytes``.
    public var fingerprintSHA256: String {
        let digest = SHA256.hash(data: wireBytes)
        return "SHA256:" + Data(digest).base64EncodedString().replacingOccurrences(of: "=", with: "")
    }

    /// The algorithm and the SHA-256 fingerprint, for logs.
    public var description: String { "\(algorithmName) \(fingerprintSHA256)" }

    /// Keys are equal when their public key blobs are.
    public static func == (lhs: SSHPublicKey, rhs: SSHPublicKey) -> Bool {
        lhs.wireBytes == rhs.wireBytes
    }

    /// Hashes the public key blob.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(wireBytes)
    }

    /// Writes the fields after the algorithm name, as they appear both in a key blob and in a
    /// certificate after its nonce.
    func writeKeyFields(to writer: inout SSHWireWriter) {
        switch self {
        case .ed25519(let key):
            writer.writeString(Array(key.rawRepresentation))
        case .ecdsaP256(let key):
            writer.writeString(Self.p256CurveName)
            writer.writeString(Array(key.x963Representation))
        }
    }

    /// Reads the fields after the algorithm name for `algorithm`.
    static func readKeyFields(algorithm: String, from reader: inout SSHWireReader) throws -> SSHPublicKey {
        switch algorithm {
        case ed25519AlgorithmName:
            let raw = try reader.readString()
            guard raw.count == 32 else {
                throw TeleportError.badParameter("Ed25519 public key must be 32 bytes, got \(raw.count)")
            }
            do {
                return .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: raw))
            } catch {
                throw TeleportError(.badParameter, "invalid Ed25519 public key", cause: error)
            }
        case ecdsaP256AlgorithmName:
            let curve = try reader.readUTF8String()
            guard curve == p256CurveName else {
                throw TeleportError.badParameter("ECDSA key names curve \(curve) but its type is \(algorithm)")
            }
            let point = try reader.readString()
            guard point.count == 65, point.first == 0x04 else {
                throw TeleportError.badParameter("ECDSA P-256 public key must be an uncompressed 65-byte point")
            }
            do {
                return .ecdsaP256(try P256.Signing.PublicKey(x963Representation: point))
            } catch {
                throw TeleportError(.badParameter, "invalid ECDSA P-256 public key", cause: error)
            }
        default:
            throw TeleportError.badParameter("unsupported SSH public key algorithm \(algorithm)")
        }
    }
}

extension SSHPublicKey {
    /// The SHA-256 of the public key blob in lowercase hex: the certificate-bound key registry's key
    /// (URL- and path-safe, unlike the base64 `SHA256:` form).
    public var fingerprintHex: String {
        LowerHex.string(SHA256.hash(data: wireBytes))
    }
}
