public import Crypto
public import Foundation
import TeleportAPI

/// An unencrypted private key in OpenSSH's own file format (`openssh-key-v1`, OpenSSH's
/// PROTOCOL.key), the `-----BEGIN OPENSSH PRIVATE KEY-----` files that `ssh-keygen` writes and that
/// `ssh -i` reads.
///
/// Only cipher `none` / KDF `none` is written or read: keys handed to users by the cluster are
/// short-lived and protected by file permissions, not passphrases.
public struct OpenSSHPrivateKey: Sendable {
    /// The private key material.
    public enum Key: Sendable {
        /// An Ed25519 key.
        case ed25519(Curve25519.Signing.PrivateKey)
        /// An ECDSA key on NIST P-256.
        case ecdsaP256(P256.Signing.PrivateKey)
    }

    /// The private key.
    public var key: Key
    /// The comment stored inside the file (`ssh-keygen -C`), often `user@host`.
    public var comment: String

    static let magic = Array("openssh-key-v1".utf8) + [0]
    static let pemBegin = "-----BEGIN OPENSSH PRIVATE KEY-----"
    static let pemEnd = "-----END OPENSSH PRIVATE KEY-----"
    /// The block size that the private section is padded to with cipher `none`.
    static let blockSize = 8

    /// Wraps a key.
    public init(_ key: Key, comment: String = "") {
        self.key = key
        self.comment = comment
    }

    /// The public half, as an SSH public key.
    public var publicKey: SSHPublicKey {
        switch key {
        case .ed25519(let privateKey): .ed25519(privateKey.publicKey)
        case .ecdsaP256(let privateKey): .ecdsaP256(privateKey.publicKey)
        }
    }

    /// The binary `openssh-key-v1` structure (what the PEM armour wraps).
    ///
    /// - Parameter checkInt: The random 32-bit value written twice in the private section, which
    ///   lets a reader detect a wrong passphrase; random unless given (tests pass a fixed one).
    public func binaryRepresentation(checkInt: UInt32 = .random(in: .min ... .max)) -> Data {
        var privateSection = SSHWireWriter()
        privateSection.writeUInt32(checkInt)
        privateSection.writeUInt32(checkInt)
        privateSection.writeString(publicKey.algorithmName)
        switch key {
        case .ed25519(let privateKey):
            let publicBytes = Array(privateKey.publicKey.rawRepresentation)
            privateSection.writeString(publicBytes)
            // OpenSSH stores the 32-byte seed followed by the public key (the "expanded" form).
            privateSection.writeString(Array(privateKey.rawRepresentation) + publicBytes)
        case .ecdsaP256(let privateKey):
            privateSection.writeString(SSHPublicKey.p256CurveName)
            privateSection.writeString(Array(privateKey.publicKey.x963Representation))
            privateSection.writeUnsignedMPInt(Array(privateKey.rawRepresentation))
        }
        privateSection.writeString(comment)
        var padByte: UInt8 = 1
        while privateSection.bytes.count % Self.blockSize != 0 {
            privateSection.writeByte(padByte)
            padByte += 1
        }

        var writer = SSHWireWriter()
        writer.writeRaw(Self.magic)
        writer.writeString("none")  // cipher
        writer.writeString("none")  // KDF
        writer.writeString([UInt8]())  // KDF options
        writer.writeUInt32(1)  // number of keys
        writer.writeString(Array(publicKey.wireBytes))
        writer.writeString(privateSection.bytes)
        return Data(writer.bytes)
    }

    /// The PEM-armoured file contents, base64 wrapped at 70 columns as `ssh-keygen` does, ending in a
    /// newline.
    ///
    /// - Parameter checkInt: See ``binaryRepresentation(checkInt:)``.
    public func pemRepresentation(checkInt: UInt32 = .random(in: .min ... .max)) -> String {
        let base64 = binaryRepresentation(checkInt: checkInt).base64EncodedString()
        var lines = [Self.pemBegin]
        var index = base64.startIndex
        while index < base64.endIndex {
            let end = base64.index(index, offsetBy: 70, limitedBy: base64.endIndex) ?? base64.endIndex
            lines.append(String(base64[index..<end]))
            index = end
        }
        lines.append(Self.pemEnd)
        return lines.joined(separator: "\n") + "\n"
    }

    /// Parses the PEM-armoured file contents.
    ///
    /// - Throws: ``TeleportError`` `badParameter` for anything other than one unencrypted Ed25519 or
    ///   ECDSA P-256 key in a well-formed file; an encrypted key gets a message that says so.
    public init(pemRepresentation pem: String) throws {
        let lines = pem.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        guard let beginIndex = lines.firstIndex(of: Self.pemBegin),
            let endIndex = lines.lastIndex(of: Self.pemEnd), beginIndex < endIndex
        else {
            throw TeleportError.badParameter("not an OpenSSH private key: missing \(Self.pemBegin) armour")
        }
        let body = lines[(beginIndex + 1)..<endIndex].joined()
        guard let binary = Data(base64Encoded: body) else {
            throw TeleportError.badParameter("OpenSSH private key: the body is not valid base64")
        }
        try self.init(binaryRepresentation: binary)
    }

    /// Parses the binary `openssh-key-v1` structure.
    ///
    /// - Throws: see ``init(pemRepresentation:)``.
    public init(binaryRepresentation binary: some Sequence<UInt8>) throws {
        var reader = SSHWireReader(binary)
        guard (try? reader.readRaw(count: Self.magic.count)) == Self.magic else {
            throw TeleportError.badParameter("not an OpenSSH private key: missing openssh-key-v1 magic")
        }
        let cipher = try reader.readUTF8String()
        let kdf = try reader.readUTF8String()
        _ = try reader.readString()  // KDF options
        guard cipher == "none", kdf == "none" else {
            throw TeleportError.badParameter(
                "encrypted OpenSSH private keys are not supported (cipher \(cipher), KDF \(kdf)); "
                    + "remove the passphrase with `ssh-keygen -p -N ''`"
            )
        }
        let keyCount = try reader.readUInt32()
        guard keyCount == 1 else {
            throw TeleportError.badParameter(
                "OpenSSH private key file holds \(keyCount) keys; exactly one is supported")
        }
        let publicKey = try SSHPublicKey(wireBytes: try reader.readString())
        let privateBytes = try reader.readString()
        try reader.expectEnd("OpenSSH private key")
        guard privateBytes.count % Self.blockSize == 0 else {
            throw TeleportError.badParameter(
                "OpenSSH private key: private section is not padded to \(Self.blockSize) bytes")
        }

        var section = SSHWireReader(privateBytes)
        guard try section.readUInt32() == section.readUInt32() else {
            throw TeleportError.badParameter("OpenSSH private key: check values differ (corrupt or encrypted)")
        }
        let algorithm = try section.readUTF8String()
        guard algorithm == publicKey.algorithmName else {
            throw TeleportError.badParameter(
                "OpenSSH private key: private part is \(algorithm), public part \(publicKey.algorithmName)")
        }
        let key: Key
        switch algorithm {
        case SSHPublicKey.ed25519AlgorithmName:
            let publicBytes = try section.readString()
            let expanded = try section.readString()
            guard expanded.count == 64, publicBytes.count == 32, Array(expanded.suffix(32)) == publicBytes else {
                throw TeleportError.badParameter("OpenSSH private key: malformed Ed25519 key")
            }
            let privateKey: Curve25519.Signing.PrivateKey
            do {
                privateKey = try Curve25519.Signing.PrivateKey(rawRepresentation: expanded.prefix(32))
            } catch {
                throw TeleportError(.badParameter, "OpenSSH private key: invalid Ed25519 seed", cause: error)
            }
            key = .ed25519(privateKey)
        case SSHPublicKey.ecdsaP256AlgorithmName:
            let curve = try section.readUTF8String()
            let point = try section.readString()
            let scalar = try section.readUnsignedMPInt()
            guard curve == SSHPublicKey.p256CurveName, scalar.count <= 32,
                case .ecdsaP256(let headerKey) = publicKey, Array(headerKey.x963Representation) == point
            else {
                throw TeleportError.badParameter("OpenSSH private key: malformed ECDSA P-256 key")
            }
            do {
                key = .ecdsaP256(
                    try P256.Signing.PrivateKey(rawRepresentation: SSHPublicKey.leftPadded(scalar, to: 32)))
            } catch {
                throw TeleportError(.badParameter, "OpenSSH private key: invalid ECDSA P-256 scalar", cause: error)
            }
        default:
            throw TeleportError.badParameter("OpenSSH private key: unsupported key type \(algorithm)")
        }
        let comment = try section.readUTF8String()
        var expectedPad: UInt8 = 1
        while !section.isAtEnd {
            guard try section.readByte() == expectedPad else {
                throw TeleportError.badParameter("OpenSSH private key: bad padding")
            }
            expectedPad &+= 1
        }
        self.init(key, comment: comment)
        guard self.publicKey == publicKey else {
            throw TeleportError.badParameter("OpenSSH private key: private key does not match its public key")
        }
    }
}
