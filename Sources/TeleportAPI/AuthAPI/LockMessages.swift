public import Foundation

extension WebAPI {
    /// The path of ``MyLock``'s route: `GET /webapi/locks/mine?login=LOGIN`.
    public static let myLocksPath = "/webapi/locks/mine"

    /// One lock in force that targets the caller of `GET /webapi/locks/mine` (by user, or by the
    /// login asked, when the caller's certificate lists it): what `tsh ssh` shows when a node or
    /// the proxy refuses it. The route never answers other users' locks.
    public struct MyLock: Codable, Sendable, Equatable {
        /// The lock's name (`tctl rm lock/NAME`).
        public var name: String
        /// The locked user, when the lock names one.
        public var user: String?
        /// The locked login, when the lock names one.
        public var login: String?
        /// The lock's message, if it has one.
        public var message: String?
        /// When the lock ends by itself; nil: until removed.
        public var expires: Date?

        /// Creates the entry.
        public init(name: String, user: String?, login: String?, message: String?, expires: Date?) {
            self.name = name
            self.user = user
            self.login = login
            self.message = message
            self.expires = expires
        }
    }
}
