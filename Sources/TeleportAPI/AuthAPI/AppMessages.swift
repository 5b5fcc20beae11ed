extension AuthAPI {
    /// `POST /v1/certs/approute` (the proxy, for `tsh apps login`): the user's current X.509
    /// certificate, to be copied with an app route.
    public struct AppRouteCertRequest: Codable, Sendable, Equatable {
        /// The user's certificate, PEM.
        public var userCertificatePEM: String
        /// The app (`app_server` name).
        public var appName: String

        enum CodingKeys: String, CodingKey {
            case userCertificatePEM = "user_certificate"
            case appName = "app_name"
        }

        /// Creates a request.
        public init(userCertificatePEM: String, appName: String) {
            self.userCertificatePEM = userCertificatePEM
            self.appName = appName
        }
    }

    /// `POST /v1/jwt/app` (an application service): the `teleport-jwt-assertion` for one user's
    /// requests to one of the service's own apps.
    public struct AppJWTRequest: Codable, Sendable, Equatable {
        /// The user's route-carrying certificate, PEM, as the proxy handed it over.
        public var userCertificatePEM: String
        /// The app (`app_server` name); its record must be the calling service's.
        public var appName: String

        enum CodingKeys: String, CodingKey {
            case userCertificatePEM = "user_certificate"
            case appName = "app_name"
        }

        /// Creates a request.
        public init(userCertificatePEM: String, appName: String) {
            self.userCertificatePEM = userCertificatePEM
            self.appName = appName
        }
    }

    /// The signed token and when it expires (Unix seconds).
    public struct AppJWTResponse: Codable, Sendable, Equatable {
        /// The compact JWS.
        public var token: String
        /// Its `exp` claim.
        public var expires: Int

        /// Creates a response.
        public init(token: String, expires: Int) {
            self.token = token
            self.expires = expires
        }
    }
}
