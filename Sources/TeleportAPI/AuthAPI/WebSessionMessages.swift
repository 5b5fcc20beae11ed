public import Foundation

extension AuthAPI {
    /// `POST /v1/websessions` (Proxy): a browser's password (and TOTP) login. The auth service
    /// checks the credentials exactly as for `tsh login` (same lockout, same `user.login` events)
    /// and stores a web session under the SHA-256 of its id.
    public struct CreateWebSessionRequest: Codable, Sendable, Equatable {
        /// The user name.
        public var user: String
        /// The password.
        public var password: String
        /// The TOTP code.
        public var otpCode: String?
        /// The browser's address, for the audit log (set by the proxy).
        public var clientAddress: String?

        enum CodingKeys: String, CodingKey {
            case user, password
            case otpCode = "otp_code"
            case clientAddress = "client_address"
        }

        /// Creates a request.
        public init(user: String, password: String, otpCode: String?, clientAddress: String?) {
            self.user = user
            self.password = password
            self.otpCode = otpCode
            self.clientAddress = clientAddress
        }
    }

    /// `POST /v1/websessions/authenticate` and `POST /v1/websessions/delete` (Proxy): the session
    /// id from the browser's cookie.
    public struct WebSessionIDRequest: Codable, Sendable, Equatable {
        /// The session id (64 hex characters).
        public var sessionID: String
        /// Whether this use renews the idle deadline (authenticate only).
        public var renew: Bool

        enum CodingKeys: String, CodingKey {
            case renew
            case sessionID = "session_id"
        }

        /// Creates a request.
        public init(sessionID: String, renew: Bool = true) {
            self.sessionID = sessionID
            self.renew = renew
        }
    }

    /// A web session as the proxy sees it. `sessionID` is set only in the reply that creates it.
    public struct WebSessionInfo: Codable, Sendable, Equatable {
        /// The secret id (the cookie's value); only when created.
        public var sessionID: String?
        /// The user.
        public var user: String
        /// The user's roles.
        public var roles: [String]
        /// The logins the user's roles allow.
        public var logins: [String]
        /// The CSRF token bound to this session: state-changing requests carry it as `X-CSRF-Token`.
        public var csrfToken: String
        /// The session ends here at the latest (the user's certificate lifetime).
        public var expires: Date
        /// The session ends here unless used before.
        public var idleExpires: Date

        enum CodingKeys: String, CodingKey {
            case user, roles, logins, expires
            case sessionID = "session_id"
            case csrfToken = "csrf_token"
            case idleExpires = "idle_expires"
        }

        /// Creates a session description.
        public init(
            sessionID: String?, user: String, roles: [String], logins: [String], csrfToken: String, expires: Date, idleExpires: Date
        ) {
            self.sessionID = sessionID
            self.user = user
            self.roles = roles
            self.logins = logins
            self.csrfToken = csrfToken
            self.expires = expires
            self.idleExpires = idleExpires
        }
    }
}
