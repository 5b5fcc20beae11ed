public import Foundation

/// A local user (`kind: user`).
public struct User: Resource {
    public static let kind = "user"
    public static let currentVersion = "v2"
    public var kind: String
    public var version: String
    public var metadata: Metadata
    public var spec: Spec

    /// The user's roles, traits and status.
    public struct Spec: Codable, Sendable, Equatable {
        /// Role names.
        public var roles: [String]
        /// Traits, e.g. `logins: [joe, root]`.
        public var traits: [String: [String]]
        /// Lock status.
        public var status: Status?
        /// Who created the user and when.
        public var createdBy: CreatedBy?

        enum CodingKeys: String, CodingKey {
            case roles, traits, status
            case createdBy = "created_by"
        }

        /// Creates a spec.
        public init(roles: [String], traits: [String: [String]], status: Status? = nil, createdBy: CreatedBy? = nil) {
            self.roles = roles
            self.traits = traits
            self.status = status
            self.createdBy = createdBy
        }
    }

    /// Whether and until when the user is locked.
    public struct Status: Codable, Sendable, Equatable {
        /// True while the user is locked.
        public var isLocked: Bool
        /// When the lock was set.
        public var lockedTime: Date?
        /// When the lock ends.
        public var lockExpires: Date?

        enum CodingKeys: String, CodingKey {
            case isLocked = "is_locked"
            case lockedTime = "locked_time"
            case lockExpires = "lock_expires"
        }

        /// Creates a status.
        public init(isLocked: Bool = false, lockedTime: Date? = nil, lockExpires: Date? = nil) {
            self.isLocked = isLocked
            self.lockedTime = lockedTime
            self.lockExpires = lockExpires
        }
    }

    /// The creator record.
    public struct CreatedBy: Codable, Sendable, Equatable {
        /// When.
        public var time: Date
        /// Who.
        public var user: Name
        /// For a user made by single sign-on: the connector and the identity it reported.
        public var connector: Connector?

        /// The single sign-on connector that created a user.
        public struct Connector: Codable, Sendable, Equatable {
            /// The connector's kind (`oidc`, `github`).
            public var type: String
            /// The connector's name.
            public var id: String
            /// The user's identity at the provider (subject, GitHub login).
            public var identity: String

            /// Creates a record.
            public init(type: String, id: String, identity: String) {
                self.type = type
                self.id = id
                self.identity = identity
            }
        }

        /// A name wrapper, as the seed's YAML has it (`user: {name: builtin-Admin}`).
        public struct Name: Codable, Sendable, Equatable {
            /// The name.
            public var name: String
            /// Creates a name.
            public init(name: String) { self.name = name }
        }

        /// Creates a record.
        public init(time: Date, user: String, connector: Connector? = nil) {
            self.time = time
            self.user = Name(name: user)
            self.connector = connector
        }
    }

    /// Creates a user.
    public init(name: String, roles: [String], logins: [String], version: String = User.currentVersion) {
        self.kind = Self.kind
        self.version = version
        self.metadata = Metadata(name: name)
        self.spec = Spec(roles: roles, traits: ["logins": logins])
    }

    /// Whether single sign-on made this user (it then never has a password).
    public var isSSO: Bool { spec.createdBy?.connector != nil }

    /// The user's allowed OS logins (the `logins` trait).
    public var logins: [String] { spec.traits["logins"] ?? [] }

    public func validate() throws {
        try validateEnvelope()
        for login in logins where login.isEmpty || login.contains(where: { $0.isWhitespace || $0 == "," }) {
            throw TeleportError.badParameter("user \(name): login \"\(login)\" is not a valid OS login")
        }
    }
}
