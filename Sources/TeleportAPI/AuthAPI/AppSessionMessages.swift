public import Foundation

extension AuthAPI {
    /// `POST /v1/appsessions/launch` (the proxy, for a web session): a one-time launch token for
    /// `appName`, bound to the web session's user, the web session and the app.
    public struct AppLaunchRequest: Codable, Sendable, Equatable {
        /// The web session's secret id (from the browser's cookie).
        public var webSessionID: String
        /// The app (`app_server` name).
        public var appName: String

        enum CodingKeys: String, CodingKey {
            case webSessionID = "web_session_id"
            case appName = "app_name"
        }

        /// Creates a request.
        public init(webSessionID: String, appName: String) {
            self.webSessionID = webSessionID
            self.appName = appName
        }
    }

    /// The launch token and where to redeem it.
    public struct AppLaunchResponse: Codable, Sendable, Equatable {
        /// The one-time token (64 hex digits); only its hash is stored.
        public var token: String
        /// The app's public address (host name).
        public var publicAddr: String

        enum CodingKeys: String, CodingKey {
            case token
            case publicAddr = "public_addr"
        }

        /// Creates a response.
        public init(token: String, publicAddr: String) {
            self.token = token
            self.publicAddr = publicAddr
        }
    }

    /// `POST /v1/appsessions/redeem` (the proxy, on the app's origin): the launch token, once,
    /// for the app whose origin received it. `POST /v1/appsessions/authenticate`: an app
    /// session's id (the cookie) and the app whose origin received it.
    public struct AppSessionRequest: Codable, Sendable, Equatable {
        /// The launch token or the app session's id.
        public var secret: String
        /// The app whose origin the browser used.
        public var appName: String
        /// The browser's address, for the audit log.
        public var clientAddress: String?

        enum CodingKeys: String, CodingKey {
            case secret
            case appName = "app_name"
            case clientAddress = "client_addr"
        }

        /// Creates a request.
        public init(secret: String, appName: String, clientAddress: String? = nil) {
            self.secret = secret
            self.appName = appName
            self.clientAddress = clientAddress
        }
    }

    /// A new app session (the redeemed token): its id for the cookie.
    public struct AppSessionCreated: Codable, Sendable, Equatable {
        /// The app session's secret id (64 hex digits); only its hash is stored.
        public var sessionID: String
        /// The user.
        public var user: String
        /// Its hard end (the web session's).
        public var expires: Date

        enum CodingKeys: String, CodingKey {
            case sessionID = "session_id"
            case user, expires
        }

        /// Creates a response.
        public init(sessionID: String, user: String, expires: Date) {
            self.sessionID = sessionID
            self.user = user
            self.expires = expires
        }
    }

    /// A valid app session: the user and a certificate with the route to the app (for the
    /// hand-off to the application service; its key is thrown away).
    public struct AppSessionIdentity: Codable, Sendable, Equatable {
        /// The user.
        public var user: String
        /// An X.509 certificate of the user with the app route, valid until the session's end.
        public var certificatePEM: String

        enum CodingKeys: String, CodingKey {
            case user
            case certificatePEM = "certificate"
        }

        /// Creates a response.
        public init(user: String, certificatePEM: String) {
            self.user = user
            self.certificatePEM = certificatePEM
        }
    }
}
