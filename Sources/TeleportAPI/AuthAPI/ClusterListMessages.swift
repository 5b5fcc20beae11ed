public import Foundation

extension WebAPI {
    /// `GET /webapi/sites` (a logged-in user's certificate): one cluster `tsh clusters` lists, the
    /// proxy's own (the root, always `online`) first, then the leaf clusters that trust it.
    public struct ClusterEntry: Codable, Sendable, Equatable {
        /// The cluster's name.
        public var name: String
        /// `online` or `offline` (a leaf: whether its reverse tunnel is up).
        public var status: String
        /// `root` (this proxy's cluster) or `leaf`.
        public var type: String
        /// A leaf: when its tunnel was last seen alive.
        public var lastConnected: Date?

        enum CodingKeys: String, CodingKey {
            case name, status, type
            case lastConnected = "last_connected"
        }

        /// Creates an entry.
        public init(name: String, status: String, type: String, lastConnected: Date? = nil) {
            self.name = name
            self.status = status
            self.type = type
            self.lastConnected = lastConnected
        }
    }
}
