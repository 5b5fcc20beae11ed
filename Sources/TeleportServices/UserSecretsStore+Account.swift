public import Foundation
import TeleportBackend

extension UserSecretsStore {
    /// When the user's authenticator was enrolled, if recorded.
    public func totpAdded(_ user: String) async throws -> Date? {
        try await read([String: Date].self, key(user, "totp_added"))?["added"]
    }

    /// Records when the user's authenticator was enrolled.
    public func setTOTPAdded(_ user: String, _ date: Date) async throws {
        try await write(["added": date], key(user, "totp_added"))
    }

    /// A new authenticator secret waiting for its first code (``setPendingTOTP(_:_:expires:)``).
    public func pendingTOTP(_ user: String) async throws -> String? {
        try await read([String: String].self, key(user, "totp_pending"))?["secret"]
    }

    /// Stores a new authenticator secret until `expires`, or removes it (nil).
    public func setPendingTOTP(_ user: String, _ secret: String?, expires: Date) async throws {
        if let secret {
            try await write(["secret": secret], key(user, "totp_pending"), expires: expires)
        } else {
            try? await backend.delete(key(user, "totp_pending"))
        }
    }
}
