public import Foundation

/// A web application served by an application service (`kind: app_server`), kept alive by the
/// service's heartbeats (one record per app) and expiring like a node's record.
public struct AppServer: Resource {
    public static let kind = "app_server"
    public static let currentVersion = "v3"
    /// Where the records are stored (soft state: each carries its expiry).
    public static let storagePrefix = "/apps/"
    public var kind: String
    public var version: String
    /// `metadata.name` is the app's name (`app_service.apps[].name`); `metadata.labels` its
    /// static labels.
    public var metadata: Metadata
    public var spec: Spec

    /// What the app is and which service serves it.
    public struct Spec: Codable, Sendable, Equatable {
        /// The app's internal address as the service dials it (`http://` or `https://`).
        public var uri: String
        /// The host name users reach it at through the proxy (`APP.<proxy public host>` or the
        /// configured `public_addr`).
        public var publicAddr: String
        /// A line for people.
        public var description: String?
        /// The host UUID of the application service that heartbeats it.
        public var hostID: String
        /// The service host's name (`nodename`).
        public var hostname: String
        /// The software version.
        public var version: String?
        /// Where the proxy reaches the application service (`app_service.listen_addr`, mutual
        /// TLS with host identities); nil for records written by hand.
        public var addr: String?

        enum CodingKeys: String, CodingKey {
            case uri, description, hostname, version, addr
            case publicAddr = "public_addr"
            case hostID = "host_id"
        }

        /// Creates a spec.
        public init(uri: String, publicAddr: String, description: String? = nil, hostID: String, hostname: String, version: String? = nil) {
            self.uri = uri
            self.publicAddr = publicAddr
            self.description = description
            self.hostID = hostID
            self.hostname = hostname
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

    /// The app's labels.
    public var allLabels: [String: String] { metadata.labels ?? [:] }

    /// Checks the name, URI, public address, description, host and every label.
    public func validate() throws {
        try validateEnvelope()
        let source = "app_server \(name)"
        try AppURI.check(spec.uri, source: "\(source): spec.uri", allowMetadataAddress: false)
        guard !spec.publicAddr.isEmpty, spec.publicAddr.utf8.count <= 253, TerminalText.isPrintable(spec.publicAddr),
            !spec.publicAddr.contains(where: { $0 == "/" || $0 == " " })
        else {
            throw TeleportError.badParameter("\(source): spec.public_addr must be a host name such as grafana.teleport.example.com")
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
    }
}

/// The rules for an app's internal URI: `http://` or `https://` (a web app), or `tcp://HOST:PORT`
/// (a TCP app: raw bytes through `tsh proxy app`; the port is required), a host, and
/// never the cloud metadata address (`169.254.169.254`, from which an app proxy would hand out the
/// host's cloud credentials) unless an administrator allows it explicitly.
public enum AppURI {
    /// The link-local cloud metadata address.
    public static let metadataHosts: Set<String> = ["169.254.169.254", "[fd00:ec2::254]", "fd00:ec2::254", "metadata.google.internal"]

    /// Whether `uri` names a TCP app (`tcp://`).
    public static func isTCP(_ uri: String) -> Bool { uri.lowercased().hasPrefix("tcp://") }

    /// The parts of an app URI.
    public struct Parts: Sendable, Equatable {
        /// `http`, `https` or `tcp`.
        public var scheme: String
        /// The host (IPv6 without brackets).
        public var host: String
        /// The port (80/443 by default).
        public var port: Int
        /// `host` or `host:port` as a Host header carries it.
        public var hostHeader: String
    }

    /// Splits `uri`.
    ///
    /// - Throws: ``TeleportError`` `badParameter` naming `source` and the fix.
    public static func parse(_ uri: String, source: String) throws -> Parts {
        let fix = "give the app's internal address, such as http://localhost:3000"
        guard uri.utf8.count <= 300, TerminalText.isPrintable(uri), let url = URL(string: uri), let scheme = url.scheme?.lowercased() else {
            throw TeleportError.badParameter("\(source): \"\(uri.prefix(64))\" is not a URI; \(fix)")
        }
        guard scheme == "http" || scheme == "https" || scheme == "tcp" else {
            throw TeleportError.badParameter(
                "\(source): the scheme \"\(scheme.prefix(16))\" is not supported (http://, https://, or tcp://HOST:PORT for a TCP app); \(fix)")
        }
        guard let host = url.host, !host.isEmpty else {
            throw TeleportError.badParameter("\(source): \"\(uri.prefix(64))\" has no host; \(fix)")
        }
        if scheme == "tcp" {
            guard url.port != nil, url.path.isEmpty || url.path == "/", url.query == nil else {
                throw TeleportError.badParameter("\(source): a TCP app's uri is tcp://HOST:PORT (a port, no path), such as tcp://localhost:5432")
            }
        }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        guard (1...65535).contains(port) else { throw TeleportError.badParameter("\(source): the port must be 1 to 65535; \(fix)") }
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        let shown = bare.contains(":") ? "[\(bare)]" : bare
        let defaultPort = scheme == "https" ? 443 : 80
        return Parts(scheme: scheme, host: bare, port: port, hostHeader: url.port == nil || port == defaultPort ? shown : "\(shown):\(port)")
    }

    /// Checks `uri`; the metadata address is refused unless `allowMetadataAddress`.
    public static func check(_ uri: String, source: String, allowMetadataAddress: Bool) throws {
        let parts = try parse(uri, source: source)
        if !allowMetadataAddress, metadataHosts.contains(parts.host.lowercased()) || parts.host.hasPrefix("169.254.") {
            throw TeleportError.badParameter(
                "\(source): \(uri.prefix(64)) is the cloud metadata address (link-local 169.254.0.0/16), which would hand the host's "
                    + "cloud credentials to users; point the app at its own address")
        }
    }
}
