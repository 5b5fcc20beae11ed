import NIOCore

/// Notices public-key offers that swift-nio-ssh refuses before our authentication delegate sees
/// them: OpenSSH certificates (paramiko's `load_certificate`, PuTTY's `-cert`) and bad signatures.
///
/// swift-nio-ssh 0.15.1 answers an offer whose algorithm it does not know (every
/// `*-cert-v01@openssh.com`) with a failure built from the delegate's
/// `supportedAuthenticationMethods`, without calling `requestReceived`; every request it does pass
/// on reads that property once in the same event-loop turn. So a read that no request matches by
/// the end of the turn is such an offer. Confined to the connection's event loop.
final class UncheckableOffers: @unchecked Sendable {
    private let loop: any EventLoop
    private var reads = 0
    private var requests = 0
    /// How many offers were refused without reaching the delegate.
    private(set) var count = 0

    init(loop: any EventLoop) { self.loop = loop }

    /// The library read the delegate's methods (for a reply to one request).
    func methodsRead() {
        reads += 1
        loop.execute { self.count = max(self.count, self.reads - self.requests) }
    }

    /// The library passed a request to the delegate.
    func requestSeen() { requests += 1 }

    /// The one-line explanation for a connection that closed without authenticating after such
    /// offers, or nil when there were none.
    func explanation(remote: String) -> String? {
        guard count > 0 else { return nil }
        return "SSH client at \(remote) closed without authenticating after offering a key this server cannot check "
            + "(\(count) offer\(count == 1 ? "" : "s")): a certificate was offered; offer its plain key too "
            + "(this server checks the certificate registered for the plain key; README: Third-party SSH clients)"
    }
}
