/// A `tsh` profile: which proxy and user a login was for (`~/.tsh/<proxy host>.yaml`).
///
/// The profile only says where to find the credentials; what they grant (user, roles, logins,
/// expiry) is always read from the certificates (``CertificateFacts``).
public struct Profile: Sendable, Equatable {
    /// The proxy's web address.
    public var webProxyAddress: ProxyAddress
    /// The proxy's SSH address as the proxy announced it (`host:3023`), when known.
    public var sshProxyAddress: String?
    /// The Teleport user.
    public var user: String
    /// The cluster name the proxy announced at login.
    public var cluster: String
    /// True when the proxy's HTTPS certificate is not verified (`--insecure` at login).
    public var insecure: Bool

    /// Creates a profile.
    public init(webProxyAddress: ProxyAddress, sshProxyAddress: String?, user: String, cluster: String, insecure: Bool) {
        self.webProxyAddress = webProxyAddress
        self.sshProxyAddress = sshProxyAddress
        self.user = user
        self.cluster = cluster
        self.insecure = insecure
    }

    /// The profile's name: the proxy host.
    public var name: String { webProxyAddress.profileName }
}
