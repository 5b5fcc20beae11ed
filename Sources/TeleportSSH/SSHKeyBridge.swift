public import NIOSSH
public import TeleportCrypto
import Foundation
import TeleportAPI

/// Conversions between our key types (``TeleportCrypto``) and swift-nio-ssh's, through the
/// OpenSSH wire encodings both sides define, so neither depends on the other's internals.
public enum SSHKeyBridge {
    /// Our view of a swift-nio-ssh public key (plain keys only; a certified key is refused).
    public static func publicKey(_ key: NIOSSHPublicKey) throws -> SSHPublicKey {
        try SSHPublicKey(authorizedKeyLine: String(openSSHPublicKey: key))
    }

    /// swift-nio-ssh's view of one of our public keys.
    public static func nioPublicKey(_ key: SSHPublicKey) throws -> NIOSSHPublicKey {
        try NIOSSHPublicKey(openSSHPublicKey: key.authorizedKeyLine())
    }

    /// swift-nio-ssh's view of one of our private keys.
    public static func nioPrivateKey(_ key: OpenSSHPrivateKey) -> NIOSSHPrivateKey {
        switch key.key {
        case .ed25519(let privateKey): NIOSSHPrivateKey(ed25519Key: privateKey)
        case .ecdsaP256(let privateKey): NIOSSHPrivateKey(p256Key: privateKey)
        }
    }

    /// swift-nio-ssh's view of a certificate, for offering it to an OpenSSH server.
    public static func nioCertifiedKey(_ certificate: SSHCertificate) throws -> NIOSSHCertifiedPublicKey {
        let key = try NIOSSHPublicKey(openSSHPublicKey: certificate.authorizedKeyLine())
        guard let certified = NIOSSHCertifiedPublicKey(key) else {
            throw TeleportError.badParameter("certificate \(certificate.keyID.debugDescription) is not a certified key")
        }
        return certified
    }
}
