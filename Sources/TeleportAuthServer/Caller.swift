public import TeleportAPI
public import TeleportCrypto

/// Who is calling the auth API, from the verified client certificate and the CA that signed it.
public struct Caller: Sendable, Equatable {
    /// A person (user CA) or a cluster member (host CA).
    public enum Kind: Sendable, Equatable {
        /// A user with roles.
        case user
        /// A cluster member with a built-in role.
        case system(SystemRole)
    }

    /// The kind.
    public var kind: Kind
    /// The identity in the certificate.
    public var identity: X509Identity
    /// The secret id of the web session a proxy acts for (``AuthAPI/webSessionHeader``): the
    /// caller is then that session's user, with the session's roles.
    public var webSessionID: String? = nil

    /// True for the local administrator.
    public var isAdmin: Bool { kind == .system(.admin) }

    /// The role names to show in `ping`.
    public var roleNames: [String] { identity.roles }
}
