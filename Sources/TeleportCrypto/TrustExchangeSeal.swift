public import Crypto
public import Foundation
public import TeleportAPI

/// Binds a root cluster's answer in a trust exchange to the token the leaf presented: an
/// HMAC-SHA256 keyed by the token over a version line, both cluster names and every CA's public
/// keys. Only whoever holds the token (the root that made it, and the leaf's administrator) can
/// make it, so a party that does not know the token cannot make a leaf trust its CAs, as a join's
/// CA pin does for a host.
public enum TrustExchangeSeal {
    /// The seal over `certAuthorities` of `rootCluster` for `leafCluster`, hex.
    public static func seal(token: String, rootCluster: String, leafCluster: String, certAuthorities: [CertAuthority]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(
            for: message(rootCluster: rootCluster, leafCluster: leafCluster, certAuthorities: certAuthorities),
            using: SymmetricKey(data: Data(token.utf8)))
        return mac.map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `seal` is the seal of these values (constant-time comparison).
    public static func verify(
        _ seal: String, token: String, rootCluster: String, leafCluster: String, certAuthorities: [CertAuthority]
    ) -> Bool {
        let expected = self.seal(token: token, rootCluster: rootCluster, leafCluster: leafCluster, certAuthorities: certAuthorities)
        return ConstantTime.equal(Array(expected.utf8), Array(seal.lowercased().utf8))
    }

    static func message(rootCluster: String, leafCluster: String, certAuthorities: [CertAuthority]) -> Data {
        var text = "teleport trusted cluster exchange v1\n\(rootCluster)\n\(leafCluster)\n"
        for ca in certAuthorities.sorted(by: { $0.spec.type.rawValue < $1.spec.type.rawValue }) {
            let keys = ca.trustedKeys
            text += "ca \(ca.spec.type.rawValue) \(ca.spec.clusterName)\n"
            for key in keys.ssh { text += "ssh \(key.publicKey.trimmingCharacters(in: .whitespacesAndNewlines))\n" }
            for pair in keys.tls { text += "tls \(pair.cert.trimmingCharacters(in: .whitespacesAndNewlines))\n" }
        }
        return Data(text.utf8)
    }
}
