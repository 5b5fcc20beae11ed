public import Foundation

/// A Kubernetes cluster served by a Kubernetes service (`kind: kube_server`), kept alive by the
/// service's heartbeats (one record per cluster) and expiring like a node's record.
public struct KubeServer: Resource {
    public static let kind = "kube_server"
    public static let currentVersion = "v3"
    /// Where the records are stored (soft state: each carries its expiry).
    public static let storagePrefix = "/kube_servers/"
    public var kind: String
    public var version: String
    /// `metadata.name` is the cluster's name (a kubeconfig context, or `kube_cluster_name`);
    /// `metadata.labels` its static labels.
    public var metadata: Metadata
    public var spec: Spec

    /// Which service serves the cluster and where the proxy reaches it.
    public struct Spec: Codable, Sendable, Equatable {
        /// The host UUID of the Kubernetes service that heartbeats it.
        public var hostID: String
        /// The service host's name (`nodename`).
        public var hostname: String
        /// The software version.
        public var version: String?
        /// Where the proxy reaches the Kubernetes service (`kubernetes_service.listen_addr`,
        /// mutual TLS with host identities); empty for a service reached through its tunnel.
        public var addr: String?
        /// The service keeps a reverse tunnel to the proxies; the proxy dials through it.
        public var useTunnel: Bool?
        /// Labels from `kubernetes_service.commands`: each command's latest output.
        public var dynamicLabels: [String: ServerNode.CommandLabelResult]?

        enum CodingKeys: String, CodingKey {
            case hostname, version, addr
            case hostID = "host_id"
            case useTunnel = "use_tunnel"
            case dynamicLabels = "dynamic_labels"
        }

        /// Creates a spec.
        public init(hostID: String, hostname: String, version: String? = nil, addr: String? = nil, useTunnel: Bool? = nil) {
            self.hostID = hostID
            self.hostname = hostname
            self.version = version
            self.addr = addr
            self.useTunnel = useTunnel
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

    /// The cluster's labels: static ones and the current dynamic ones (which win on a clash).
    public var allLabels: [String: String] {
        var labels = metadata.labels ?? [:]
        for (key, value) in spec.dynamicLabels ?? [:] { labels[key] = value.result }
        return labels
    }

    /// Checks the name, host, address and every label.
    public func validate() throws {
        try validateEnvelope()
        let source = "kube_server \(name)"
        guard !spec.hostname.isEmpty, spec.hostname.utf8.count <= 253, TerminalText.isPrintable(spec.hostname) else {
            throw TeleportError.badParameter("\(source): spec.hostname must be 1 to 253 printable characters")
        }
        guard (spec.addr ?? "").utf8.count <= 300, TerminalText.isPrintable(spec.addr ?? "") else {
            throw TeleportError.badParameter("\(source): spec.addr must be a host:port address of printable characters")
        }
        guard !spec.hostID.isEmpty, spec.hostID.utf8.count <= 64, TerminalText.isPrintable(spec.hostID) else {
            throw TeleportError.badParameter("\(source): spec.host_id must be the service's host UUID")
        }
        guard spec.useTunnel == true || !(spec.addr ?? "").isEmpty else {
            throw TeleportError.badParameter("\(source): spec.addr is missing (set it, or spec.use_tunnel: true)")
        }
        for (key, value) in metadata.labels ?? [:] {
            try LabelRules.check(key: key, source: "\(source): metadata.labels")
            try LabelRules.check(value: value, key: key, source: "\(source): metadata.labels")
        }
    }
}

extension AuthAPI {
    /// `POST /v1/certs/kuberoute` (the proxy, for `tsh kube login`): the user's current X.509
    /// certificate, to be copied with a Kubernetes cluster route.
    public struct KubeRouteCertRequest: Codable, Sendable, Equatable {
        /// The user's certificate, PEM.
        public var userCertificatePEM: String
        /// The Kubernetes cluster (`kube_server` name).
        public var kubeCluster: String

        enum CodingKeys: String, CodingKey {
            case userCertificatePEM = "user_certificate"
            case kubeCluster = "kube_cluster"
        }

        /// Creates a request.
        public init(userCertificatePEM: String, kubeCluster: String) {
            self.userCertificatePEM = userCertificatePEM
            self.kubeCluster = kubeCluster
        }
    }
}
