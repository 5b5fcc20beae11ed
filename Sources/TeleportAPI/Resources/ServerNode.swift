/// A registered SSH node (`kind: node`), kept alive by heartbeats.
public struct ServerNode: Resource {
    public static let kind = "node"
    public static let currentVersion = "v2"
    public static let openSSHSubKind = "openssh"
    public var kind: String
    /// `openssh` for an OpenSSH `sshd` registered by an administrator (no heartbeats); nil for
    /// Teleport nodes.
    public var subKind: String?
    public var version: String
    /// `metadata.name` is the host UUID; `metadata.labels` the static labels.
    public var metadata: Metadata
    public var spec: Spec

    /// Where and what the node is.
    public struct Spec: Codable, Sendable, Equatable {
        /// The address clients reach the node's SSH server at, `host:port`.
        public var addr: String
        /// The node's name (`nodename`, by default the host name).
        public var hostname: String
        /// Dynamic labels from commands: name → last result.
        public var cmdLabels: [String: CommandLabelResult]?
        /// The software version.
        public var version: String?
        /// The SHA-256 fingerprint of the node's SSH host key.
        public var hostKeyFingerprint: String?
        /// True when the node is reached through its reverse tunnel to the proxies (Teleport's
        /// `use_tunnel`); `addr` may then be empty.
        public var useTunnel: Bool?

        enum CodingKeys: String, CodingKey {
            case addr, hostname, version
            case useTunnel = "use_tunnel"
            case cmdLabels = "cmd_labels"
            case hostKeyFingerprint = "host_key_fingerprint"
        }

        /// Creates a spec.
        public init(addr: String, hostname: String, cmdLabels: [String: CommandLabelResult]? = nil, version: String? = nil) {
            self.addr = addr
            self.hostname = hostname
            self.cmdLabels = cmdLabels
            self.version = version
        }
    }

    /// The last result of a dynamic label's command.
    public struct CommandLabelResult: Codable, Sendable, Equatable {
        /// How often the command runs, e.g. `1m0s`.
        public var period: String
        /// The command's argv.
        public var command: [String]
        /// The trimmed output, or an error value.
        public var result: String

        /// Creates a result.
        public init(period: String, command: [String], result: String) {
            self.period = period
            self.command = command
            self.result = result
        }
    }

    enum CodingKeys: String, CodingKey {
        case kind, version, metadata, spec
        case subKind = "sub_kind"
    }

    /// Creates a node.
    public init(uuid: String, hostname: String, addr: String, labels: [String: String] = [:]) {
        self.kind = Self.kind
        self.version = Self.currentVersion
        self.metadata = Metadata(name: uuid, labels: labels, namespace: "default")
        self.spec = Spec(addr: addr, hostname: hostname)
    }

    /// Whether the proxy reaches this node through the node's reverse tunnel.
    public var isTunnelled: Bool { spec.useTunnel == true }

    /// The address column of `tsh ls` and `tctl nodes ls`: `⟵ Tunnel` for a tunnelled node.
    public var displayAddress: String { isTunnelled ? "⟵ Tunnel" : spec.addr }

    /// Static and dynamic labels together.
    public var allLabels: [String: String] {
        var labels = metadata.labels ?? [:]
        for (key, value) in spec.cmdLabels ?? [:] { labels[key] = value.result }
        return labels
    }

    /// Checks the name, host name and address, and every label (``LabelRules``): a heartbeat or a
    /// `tctl create` with a control character in a label is refused.
    public func validate() throws {
        try validateEnvelope()
        guard !spec.hostname.isEmpty else { throw TeleportError.badParameter("node \(name): spec.hostname is missing") }
        guard !spec.addr.isEmpty || isTunnelled else {
            throw TeleportError.badParameter("node \(name): spec.addr is missing (set it, or spec.use_tunnel: true for a node reached through its reverse tunnel)")
        }
        guard spec.hostname.utf8.count <= 253, TerminalText.isPrintable(spec.hostname) else {
            throw TeleportError.badParameter(
                "node \(name): spec.hostname \"\(TerminalText.escape(String(spec.hostname.prefix(64))))\" is not valid (at most 253 printable characters)")
        }
        guard spec.addr.utf8.count <= 300, TerminalText.isPrintable(spec.addr) else {
            throw TeleportError.badParameter("node \(name): spec.addr is not a host:port address of printable characters")
        }
        for (key, value) in metadata.labels ?? [:] {
            try LabelRules.check(key: key, source: "node \(name): metadata.labels")
            try LabelRules.check(value: value, key: key, source: "node \(name): metadata.labels")
        }
        for (key, value) in spec.cmdLabels ?? [:] {
            try LabelRules.check(key: key, source: "node \(name): spec.cmd_labels")
            try LabelRules.check(value: value.result, key: key, source: "node \(name): spec.cmd_labels")
        }
    }
}
