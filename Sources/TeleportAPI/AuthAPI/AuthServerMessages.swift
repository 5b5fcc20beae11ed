public import Foundation

extension AuthAPI {
    /// One auth server of the cluster as it announces itself (`/authservers/HOSTUUID` in the store,
    /// refreshed every few seconds with an expiry) and as `GET /v1/authservers` lists it: hosts keep
    /// the addresses in `data_dir/authservers.json` (issue 18).
    public struct AuthServerEntry: Codable, Sendable, Equatable {
        /// The auth server's host UUID.
        public var uuid: String
        /// Its `nodename`.
        public var hostname: String
        /// Where hosts reach its API, `host:port` (`auth_service.public_addr`, else the listen
        /// address, with `advertise_ip` or the node name for an unspecified host).
        public var addr: String

        /// Creates an entry.
        public init(uuid: String, hostname: String, addr: String) {
            self.uuid = uuid
            self.hostname = hostname
            self.addr = addr
        }
    }
}
