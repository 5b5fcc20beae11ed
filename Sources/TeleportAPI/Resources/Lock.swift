public import Foundation

/// A lock (`kind: lock`): while it exists, its target cannot be used. A locked user cannot log in
/// or get certificates, and nodes and proxies refuse new SSH connections and close the existing
/// ones of that user, of that OS login, or to that node. `metadata.expires` ends the lock by itself
/// (`tctl lock --ttl`); `tctl rm lock/NAME` ends it at once.
public struct Lock: Resource {
    public static let kind = "lock"
    public static let currentVersion = "v2"
    public var kind: String
    public var version: String
    public var metadata: Metadata
    public var spec: Spec

    /// What is locked and why.
    public struct Spec: Codable, Sendable, Equatable {
        /// What the lock applies to.
        public var target: Target
        /// Shown to whoever is refused.
        public var message: String?

        public init(target: Target, message: String? = nil) {
            self.target = target
            self.message = message
        }
    }

    /// The target: every field given must match (at least one is given).
    public struct Target: Codable, Sendable, Equatable {
        /// A Teleport user.
        public var user: String?
        /// An OS login on nodes.
        public var login: String?
        /// A node, by UUID or host name.
        public var node: String?

        public init(user: String? = nil, login: String? = nil, node: String? = nil) {
            self.user = user
            self.login = login
            self.node = node
        }

        /// `user=joe`, `login=root,node=db1`.
        public var description: String {
            [("user", user), ("login", login), ("node", node)].compactMap { key, value in value.map { "\(key)=\($0)" } }
                .joined(separator: ",")
        }
    }

    /// Creates a lock.
    public init(name: String, target: Target, message: String? = nil, expires: Date? = nil) {
        self.kind = Self.kind
        self.version = Self.currentVersion
        self.metadata = Metadata(name: name, expires: expires)
        self.spec = Spec(target: target, message: message)
    }

    public func validate() throws {
        try validateEnvelope()
        let target = spec.target
        guard [target.user, target.login, target.node].contains(where: { !($0 ?? "").isEmpty }) else {
            throw TeleportError.badParameter("lock \(name): spec.target needs a user, a login or a node")
        }
    }

    /// Whether the lock is in force at `now` and applies to this user, login and node (nil: not
    /// known here, which a target naming it does not match).
    public func applies(user: String?, login: String?, node: [String], at now: Date) -> Bool {
        if let expires = metadata.expires, expires <= now { return false }
        let target = spec.target
        if let wanted = target.user, wanted != user { return false }
        if let wanted = target.login, wanted != login { return false }
        if let wanted = target.node, !node.contains(wanted) { return false }
        return target.user != nil || target.login != nil || target.node != nil
    }

    /// The refusal for whoever the lock stops.
    public var refusal: String {
        "\(spec.target.description) is locked" + (spec.message.map { ": \($0)" } ?? "") + " (lock \(name))"
    }
}
