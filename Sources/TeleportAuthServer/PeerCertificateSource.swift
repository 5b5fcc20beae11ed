import NIOCore
import NIOSSL
public import X509
public import TeleportAPI
import TeleportCrypto

/// Where ``AuthenticationMiddleware`` reads the client's certificate: in production the verified
/// TLS peer certificate of the connection; in in-process tests (the router has no TLS) a
/// certificate the test issued from the cluster's own CAs. The middleware checks it the same way
/// either way (signing CA, cluster, current host identity), and nothing in a request (a header,
/// the body) can choose it: the test source exists only for this package's tests.
public struct PeerCertificateSource: Sendable {
    let read: @Sendable (any Channel) async throws -> Certificate?

    /// The TLS peer certificate of the request's connection (the TLS layer verified its chain).
    public static let tls = PeerCertificateSource { channel in
        guard let peer = try await channel.nioSSL_peerCertificate().get() else { return nil }
        do {
            return try Certificate.fromDER(try peer.toDERBytes())
        } catch {
            throw TeleportError.accessDenied("the client certificate cannot be read")
        }
    }

    /// Tests only: every request presents `certificate` (nil: no certificate).
    package static func presenting(_ certificate: Certificate?) -> PeerCertificateSource {
        PeerCertificateSource { _ in certificate }
    }
}
