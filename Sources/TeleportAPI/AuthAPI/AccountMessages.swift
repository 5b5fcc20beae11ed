public import Foundation

extension AuthAPI {
    /// `POST /v1/account/password` (a user acting through a web session): a new password, proved
    /// with the current password and a TOTP code (wrong ones count toward the login lockout).
    public struct ChangePasswordRequest: Codable, Sendable, Equatable {
        /// The password now.
        public var currentPassword: String
        /// A current code of the user's authenticator.
        public var otpCode: String?
        /// The new password (the signup rules apply).
        public var newPassword: String
        /// The browser's address, for the audit log.
        public var clientAddress: String?

        enum CodingKeys: String, CodingKey {
            case currentPassword = "current_password"
            case otpCode = "otp_code"
            case newPassword = "new_password"
            case clientAddress = "client_addr"
        }

        /// Creates one.
        public init(currentPassword: String, otpCode: String?, newPassword: String, clientAddress: String? = nil) {
            self.currentPassword = currentPassword
            self.otpCode = otpCode
            self.newPassword = newPassword
            self.clientAddress = clientAddress
        }
    }

    /// `GET /v1/account/totp`: the user's authenticator enrolment (never its secret).
    public struct TOTPDeviceInfo: Codable, Sendable, Equatable {
        /// Whether an authenticator is enrolled.
        public var enrolled: Bool
        /// When it was added (unknown for enrolments older than this field).
        public var added: Date?

        /// Creates one.
        public init(enrolled: Bool, added: Date?) {
            self.enrolled = enrolled
            self.added = added
        }
    }

    /// `POST /v1/account/totp/begin`: starts replacing the authenticator, proved with the current
    /// password and a code of the current one; the reply holds the new secret to enrol.
    public struct BeginTOTPReplaceRequest: Codable, Sendable, Equatable {
        /// The password now.
        public var currentPassword: String
        /// A current code of the enrolled authenticator.
        public var otpCode: String?
        /// The browser's address, for the audit log.
        public var clientAddress: String?

        enum CodingKeys: String, CodingKey {
            case currentPassword = "current_password"
            case otpCode = "otp_code"
            case clientAddress = "client_addr"
        }

        /// Creates one.
        public init(currentPassword: String, otpCode: String?, clientAddress: String? = nil) {
            self.currentPassword = currentPassword
            self.otpCode = otpCode
            self.clientAddress = clientAddress
        }
    }

    /// The new authenticator secret to enrol; it replaces the old one only once confirmed.
    public struct TOTPReplaceChallenge: Codable, Sendable, Equatable {
        /// Base32 secret.
        public var secret: String
        /// The user (for the otpauth URI).
        public var user: String
        /// The cluster (the otpauth URI's issuer).
        public var clusterName: String
        /// Until when the confirmation is accepted.
        public var expires: Date

        enum CodingKeys: String, CodingKey {
            case secret, user, expires
            case clusterName = "cluster_name"
        }

        /// Creates one.
        public init(secret: String, user: String, clusterName: String, expires: Date) {
            self.secret = secret
            self.user = user
            self.clusterName = clusterName
            self.expires = expires
        }
    }

    /// `POST /v1/account/totp/confirm`: a code of the new secret; the new authenticator replaces the old.
    public struct ConfirmTOTPReplaceRequest: Codable, Sendable, Equatable {
        /// A code of the new secret.
        public var otpCode: String
        /// The browser's address, for the audit log.
        public var clientAddress: String?

        enum CodingKeys: String, CodingKey {
            case otpCode = "otp_code"
            case clientAddress = "client_addr"
        }

        /// Creates one.
        public init(otpCode: String, clientAddress: String? = nil) {
            self.otpCode = otpCode
            self.clientAddress = clientAddress
        }
    }
}
