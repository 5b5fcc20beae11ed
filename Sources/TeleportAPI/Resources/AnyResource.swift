/// A resource of any known kind, as read from a YAML or JSON document.
///
/// The named cases are the kinds of wave 1, kept for pattern matching at their call sites; a kind
/// added later (``ResourceKinds/register(_:)``) arrives as ``registered(_:)``, and generic code
/// (stores, codecs, routes) works on ``value`` and its ``ResourceKind``, never on the cases.
public enum AnyResource: Sendable, Equatable {
    case user(User)
    case role(Role)
    case token(ProvisionToken)
    case node(ServerNode)
    case certAuthority(CertAuthority)
    case clusterName(ClusterNameResource)
    case lock(Lock)
    /// A resource of a kind registered with ``ResourceKinds/register(_:)`` (not one of the above).
    case registered(any Resource)

    /// The kinds `tctl` and the API know, in the order `tctl get all` prints them.
    public static var kinds: [String] { ResourceKinds.all.map(\.name) }

    /// The canonical kind for what a person may type: `users`, `user`, `cert_authorities`, `ca`, ...
    public static func canonicalKind(_ typed: String) -> String? {
        ResourceKinds.named(typed)?.name
    }

    /// The wrapped value.
    public var value: any Resource {
        switch self {
        case .user(let value): value
        case .role(let value): value
        case .token(let value): value
        case .node(let value): value
        case .certAuthority(let value): value
        case .clusterName(let value): value
        case .lock(let value): value
        case .registered(let value): value
        }
    }

    /// The kind.
    public var kind: String { value.kind }

    /// The name.
    public var name: String { value.metadata.name }

    /// The registry's entry for this resource's kind.
    public var resourceKind: ResourceKind? { ResourceKinds.of(value) }

    /// The value as `R`, when it is one.
    public func `as`<R: Resource>(_ type: R.Type) -> R? { value as? R }

    /// Wraps a typed resource of any registered kind.
    public init(_ resource: any Resource) throws {
        switch resource {
        case let value as User: self = .user(value)
        case let value as Role: self = .role(value)
        case let value as ProvisionToken: self = .token(value)
        case let value as ServerNode: self = .node(value)
        case let value as CertAuthority: self = .certAuthority(value)
        case let value as ClusterNameResource: self = .clusterName(value)
        case let value as Lock: self = .lock(value)
        case let value where ResourceKinds.of(value) != nil: self = .registered(value)
        default: throw TeleportError.badParameter("unsupported resource kind \(resource.kind)")
        }
    }

    /// Same kind, same value.
    public static func == (lhs: AnyResource, rhs: AnyResource) -> Bool {
        lhs.value.isEqual(to: rhs.value)
    }
}

extension Resource {
    /// Whether `other` is a value of this type equal to this one.
    public func isEqual(to other: any Resource) -> Bool {
        guard let other = other as? Self else { return false }
        return self == other
    }
}
