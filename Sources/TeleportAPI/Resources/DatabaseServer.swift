/// A database served by a database service (`kind: db_server`), kept alive by the service's
/// heartbeats (one record per database) and expiring like a node's record.
public struct DatabaseServer: Resource {
    public static let kind = "db_server"
    public static let currentVersion = "v3"
    /// Where the records are stored (soft state: each carries its expiry).
    public static let storagePrefix = "/databases/"
    public var kind: String
    public var version: String
    /// `metadata.name` is the database's name (`db_service.databases[].name`); `metadata.labels`
    /// its static labels.
    public var metadata: Metadata
    public var spec: Spec

    /// The database protocols a service speaks.
    public enum DatabaseProtocol: String, Codable, Sendable, CaseIterable {
        case postgres
        case mysql

        /// The ALPN protocol that routes this protocol's clients on the proxy's web port
        /// (`teleport-postgres`, `teleport-mysql`): TLS from the first byte, then the protocol's
        /// start-up inside it.
        public var alpnProtocol: String { "teleport-\(rawValue)" }
    }

    /// What the database is and which service serves it.
    public struct Spec: Codable, Sendable, Equatable {
        /// `postgres` or `mysql`.
        public var `protocol`: DatabaseProtocol
        /// The database's address as the service dials it, `host:port`.
        public var uri: String
        /// A line for people.
        public var description: String?
        /// The host UUID of the database service that heartbeats it.
        public var hostID: String
        /// The service host's name (`nodename`).
        public var hostname: String
        /// Dynamic labels: the commands' latest output.
        public var dynamicLabels: [String: ServerNode.CommandLabelResult]?
        /// The software version.
        public var version: String?
        /// Where the proxy reaches the database service (`db_service.listen_addr`, mutual TLS
        /// with host identities); nil for records written by hand.
        public var addr: String?
        /// The database service is reached through its reverse tunnel (`addr` is then empty).
        public var useTunnel: Bool?

        enum CodingKeys: String, CodingKey {
            case `protocol`, uri, description, hostname, version, addr
            case hostID = "host_id"
            case useTunnel = "use_tunnel"
            case dynamicLabels = "dynamic_labels"
        }

        /// Creates a spec.
        public init(
            protocol: DatabaseProtocol, uri: String, description: String? = nil, hostID: String, hostname: String,
            dynamicLabels: [String: ServerNode.CommandLabelResult]? = nil, version: String? = nil
        ) {
            self.protocol = `protocol`
            self.uri = uri
            self.description = description
            self.hostID = hostID
            self.hostname = hostname
            self.dynamicLabels = dynamicLabels
            self.version = version
        }
    }

    enum CodingKeys: String, CodingKey {
        case kind, version, metadata, spec
    }

    /// Creates a record.
    public init(name: String, labels: [String: String]? = nil, spec: Spec) {
        self.kind = Self.kind
        self.version = Self.currentVersion
        self.metadata = Metadata(name: name, labels: labels, namespace: "default")
        self.spec = spec
    }

    /// Static and dynamic labels together (dynamic ones win on a clash).
    public var allLabels: [String: String] {
        var labels = metadata.labels ?? [:]
        for (key, value) in spec.dynamicLabels ?? [:] { labels[key] = value.result }
        return labels
    }

    /// Checks the name, URI, description, host and every label (``LabelRules``).
    public func validate() throws {
        try validateEnvelope()
        let source = "db_server \(name)"
        guard !spec.uri.isEmpty, spec.uri.utf8.count <= 300, TerminalText.isPrintable(spec.uri) else {
            throw TeleportError.badParameter("\(source): spec.uri must be a host:port address of printable characters")
        }
        guard (spec.description ?? "").utf8.count <= 1000, TerminalText.isPrintable(spec.description ?? "") else {
            throw TeleportError.badParameter("\(source): spec.description must be at most 1000 printable characters")
        }
        guard !spec.hostname.isEmpty, spec.hostname.utf8.count <= 253, TerminalText.isPrintable(spec.hostname) else {
            throw TeleportError.badParameter("\(source): spec.hostname must be 1 to 253 printable characters")
        }
        guard (spec.addr ?? "").utf8.count <= 300, TerminalText.isPrintable(spec.addr ?? "") else {
            throw TeleportError.badParameter("\(source): spec.addr must be a host:port address of printable characters")
        }
        guard !spec.hostID.isEmpty, spec.hostID.utf8.count <= 64, TerminalText.isPrintable(spec.hostID) else {
            throw TeleportError.badParameter("\(source): spec.host_id must be the service's host UUID")
        }
        for (key, value) in metadata.labels ?? [:] {
            try LabelRules.check(key: key, source: "\(source): metadata.labels")
            try LabelRules.check(value: value, key: key, source: "\(source): metadata.labels")
        }
        for (key, value) in spec.dynamicLabels ?? [:] {
            try LabelRules.check(key: key, source: "\(source): spec.dynamic_labels")
            try LabelRules.check(value: value.result, key: key, source: "\(source): spec.dynamic_labels")
        }
    }
}
