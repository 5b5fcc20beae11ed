/// The cluster's name (`kind: cluster_name`), fixed at first start.
public struct ClusterNameResource: Resource {
    public static let kind = "cluster_name"
    public static let currentVersion = "v2"
    public var kind: String
    public var version: String
    /// `metadata.name` is always `cluster-name`.
    public var metadata: Metadata
    public var spec: Spec

    /// The name and a unique id.
    public struct Spec: Codable, Sendable, Equatable {
        /// The cluster name.
        public var clusterName: String
        /// A UUID fixed at creation.
        public var clusterID: String

        enum CodingKeys: String, CodingKey {
            case clusterName = "cluster_name"
            case clusterID = "cluster_id"
        }

        /// Creates a spec.
        public init(clusterName: String, clusterID: String) {
            self.clusterName = clusterName
            self.clusterID = clusterID
        }
    }

    /// Creates the resource.
    public init(clusterName: String, clusterID: String) {
        self.kind = Self.kind
        self.version = Self.currentVersion
        self.metadata = Metadata(name: "cluster-name")
        self.spec = Spec(clusterName: clusterName, clusterID: clusterID)
    }

    public func validate() throws {
        try validateEnvelope()
        try ResourceName.validate(spec.clusterName, kind: "cluster_name spec.cluster_name")
    }
}
