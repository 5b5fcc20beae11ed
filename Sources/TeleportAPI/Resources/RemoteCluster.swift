public import Foundation

/// A leaf cluster as its **root** sees it (`kind: remote_cluster`, `tctl get rc`): written when a
/// leaf establishes trust with a `trusted_cluster` token. `status.connection` says whether the
/// leaf's reverse tunnel is up, `status.last_heartbeat` when it was last seen. `tctl rm rc/NAME`
/// removes it together with the leaf's CAs, which ends the trust.
public struct RemoteCluster: Resource {
    public static let kind = "remote_cluster"
    public static let currentVersion = "v3"
    /// Where remote cluster records are stored.
    public static let storagePrefix = "/remoteclusters/"
    public var kind: String
    public var version: String
    public var metadata: Metadata
    public var status: Status

    /// What the root knows of the leaf's tunnel.
    public struct Status: Codable, Sendable, Equatable {
        /// `online` or `offline`.
        public var connection: String
        /// When the leaf's tunnel was last seen alive.
        public var lastHeartbeat: Date?

        enum CodingKeys: String, CodingKey {
            case connection
            case lastHeartbeat = "last_heartbeat"
        }

        /// Creates a status.
        public init(connection: String = "offline", lastHeartbeat: Date? = nil) {
            self.connection = connection
            self.lastHeartbeat = lastHeartbeat
        }
    }

    /// Creates a remote cluster record, offline.
    public init(name: String, status: Status = Status()) {
        self.kind = Self.kind
        self.version = Self.currentVersion
        self.metadata = Metadata(name: name)
        self.status = status
    }

    public func validate() throws {
        try validateEnvelope()
        guard ["online", "offline"].contains(status.connection) else {
            throw TeleportError.badParameter("remote_cluster \(name): status.connection must be online or offline")
        }
    }
}
