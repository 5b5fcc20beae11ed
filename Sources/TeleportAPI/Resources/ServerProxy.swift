/// A running proxy (`kind: proxy`), kept alive by the proxy's own heartbeats and expiring like a
/// node's record. Agents read these records to know how many proxies the cluster has, and keep a
/// reverse tunnel to each of them (they may all sit behind one load-balanced address).
public struct ServerProxy: Resource {
    public static let kind = "proxy"
    public static let currentVersion = "v2"
    /// Where proxy records are stored (soft state: each carries its expiry).
    public static let storagePrefix = "/proxies/"
    public var kind: String
    public var version: String
    /// `metadata.name` is the proxy's host UUID (the one its host certificate names).
    public var metadata: Metadata
    public var spec: Spec

    /// Where and what the proxy is.
    public struct Spec: Codable, Sendable, Equatable {
        /// The proxy's reverse-tunnel address as agents are told to dial it, `host:port`.
        public var addr: String
        /// The proxy host's name (`nodename`).
        public var hostname: String
        /// The proxy's public web address (`proxy_service.public_addr`).
        public var publicAddr: String?
        /// The software version.
        public var version: String?

        enum CodingKeys: String, CodingKey {
            case addr, hostname, version
            case publicAddr = "public_addr"
        }

        /// Creates a spec.
        public init(addr: String, hostname: String, publicAddr: String? = nil, version: String? = nil) {
            self.addr = addr
            self.hostname = hostname
            self.publicAddr = publicAddr
            self.version = version
        }
    }

    enum CodingKeys: String, CodingKey {
        case kind, version, metadata, spec
    }

    /// Creates a proxy record.
    public init(uuid: String, hostname: String, addr: String, publicAddr: String? = nil) {
        self.kind = Self.kind
        self.version = Self.currentVersion
        self.metadata = Metadata(name: uuid, labels: nil, namespace: "default")
        self.spec = Spec(addr: addr, hostname: hostname, publicAddr: publicAddr)
    }

    /// Checks the name, host name and addresses (printable, bounded).
    public func validate() throws {
        try validateEnvelope()
        guard !spec.hostname.isEmpty, spec.hostname.utf8.count <= 253, TerminalText.isPrintable(spec.hostname) else {
            throw TeleportError.badParameter("proxy \(name): spec.hostname must be 1 to 253 printable characters")
        }
        for (field, value) in [("spec.addr", spec.addr), ("spec.public_addr", spec.publicAddr ?? "")] {
            guard value.utf8.count <= 300, TerminalText.isPrintable(value) else {
                throw TeleportError.badParameter("proxy \(name): \(field) is not a host:port address of printable characters")
            }
        }
    }
}
