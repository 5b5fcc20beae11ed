/// A resource of any known kind, as read from a YAML or JSON document.
public enum AnyResource: Sendable, Equatable {
    case user(User)
    case role(Role)
    case token(ProvisionToken)
    case node(ServerNode)
    case certAuthority(CertAuthority)
    case clusterName(ClusterNameResource)
    case lock(Lock)

    /// The kinds `tctl` and the API know, in the order `tctl get all` prints them.
    public static let kinds: [String] = [
        ClusterNameResource.kind, CertAuthority.kind, Role.kind, User.kind, ProvisionToken.kind, ServerNode.kind, Lock.kind,
    ]

    /// The canonical kind for what a person may type: `users`, `user`, `cert_authorities`, `ca`, ...
    public static func canonicalKind(_ typed: String) -> String? {
        let lower = typed.lowercased()
        switch lower {
        case "user", "users": return User.kind
        case "role", "roles": return Role.kind
        case "token", "tokens": return ProvisionToken.kind
        case "node", "nodes": return ServerNode.kind
        case "cert_authority", "cert_authorities", "cert_authoritys", "ca", "cas": return CertAuthority.kind
        case "cluster_name", "cluster_names": return ClusterNameResource.kind
        case "lock", "locks": return Lock.kind
        default: return nil
        }
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
        }
    }

    /// The kind.
    public var kind: String { value.kind }

    /// The name.
    public var name: String { value.metadata.name }

    /// Wraps a typed resource.
    public init(_ resource: any Resource) throws {
        switch resource {
        case let value as User: self = .user(value)
        case let value as Role: self = .role(value)
        case let value as ProvisionToken: self = .token(value)
        case let value as ServerNode: self = .node(value)
        case let value as CertAuthority: self = .certAuthority(value)
        case let value as ClusterNameResource: self = .clusterName(value)
        case let value as Lock: self = .lock(value)
        default: throw TeleportError.badParameter("unsupported resource kind \(resource.kind)")
        }
    }
}
