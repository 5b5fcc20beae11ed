public import Foundation
public import TeleportAPI
import HummingbirdBcrypt
import TeleportCrypto
import TeleportServices

extension AuditEventType {
    /// `user.password_change` refused (wrong current password or code, or a locked account).
    static let passwordChangeFailure = ("user.password_change", "T1005W")
    /// `mfa.add`: a user replaced their authenticator (TOTP) from the account page.
    static let mfaDeviceAdd = ("mfa.add", "T1010I")
    /// `mfa.add` refused: the proof (password and current code) was wrong.
    static let mfaDeviceAddFailure = ("mfa.add", "T1010W")
}

/// The account page's calls (`/web/account`): a signed-in user changes their own password or
/// replaces their authenticator. Each proves the current password and a TOTP code through
/// ``checkCredentials(user:password:otpCode:clientAddress:beforeSpendingCode:)``, so a wrong one
/// counts toward the same lockout as a login; each outcome is audited.
extension AuthServer {
    /// How long a new authenticator secret waits for its first code.
    static let totpReplaceWindow: TimeInterval = 10 * 60

    /// Checks the proof of `user` for an account change; a refusal is audited as `event` and
    /// answered with a sentence for the user themself.
    func proveAccountOwner(
        _ user: String, password: String, otpCode: String?, clientAddress: String?, event: (String, String)
    ) async throws {
        do {
            _ = try await checkCredentials(user: user, password: password, otpCode: otpCode, clientAddress: clientAddress)
        } catch let refusal as LoginRefusal {
            try await emit(
                event,
                fields: [
                    "user": .string(user), "success": false, "error": .string(refusal.reason), "addr.remote": .string(clientAddress ?? ""),
                ])
            if refusal.reason.hasPrefix("account locked") {
                throw TeleportError.accessDenied(
                    "your account is locked after too many failed attempts; wait 30 minutes or ask an administrator to reset it")
            }
            if refusal.reason == "one-time code already used" { throw refusal.error }
            throw TeleportError.accessDenied(
                "the current password or the one-time code is wrong (\(Self.maxFailures) failed attempts lock the account)")
        }
    }

    /// Sets a new password for `user` after checking the current one and a TOTP code.
    public func changePassword(user: String, _ request: AuthAPI.ChangePasswordRequest, keepingWebSession webSessionID: String? = nil) async throws {
        // The new password is checked first: a weak one must not spend the code or count as a failure.
        try Self.checkPasswordPolicy(request.newPassword)
        guard request.newPassword != request.currentPassword else {
            throw TeleportError.badParameter("the new password is the same as the current one")
        }
        try await proveAccountOwner(
            user, password: request.currentPassword, otpCode: request.otpCode, clientAddress: request.clientAddress,
            event: AuditEventType.passwordChangeFailure)
        try await secrets.setPasswordHash(user, try await PasswordHashing.hash(request.newPassword, cost: settings.bcryptCost))
        // Whoever knew the old password is signed out of the web UI; the session that changed it stays.
        let ended = try await webSessions.deleteAll(user: user, keeping: webSessionID)
        try await emit(
            AuditEventType.passwordChange,
            fields: [
                "user": .string(user), "kind": "change", "success": true, "addr.remote": .string(request.clientAddress ?? ""),
                "web_sessions_ended": .int(ended),
            ])
    }

    /// The user's authenticator enrolment.
    public func totpDevice(user: String) async throws -> AuthAPI.TOTPDeviceInfo {
        let state = try await secrets.totp(user)
        return AuthAPI.TOTPDeviceInfo(enrolled: state != nil, added: state == nil ? nil : try await secrets.totpAdded(user))
    }

    /// Starts replacing the authenticator: checks the password and a current code, then keeps a
    /// new secret for ``totpReplaceWindow`` until a code of it confirms it.
    public func beginTOTPReplace(user: String, _ request: AuthAPI.BeginTOTPReplaceRequest) async throws -> AuthAPI.TOTPReplaceChallenge {
        try await proveAccountOwner(
            user, password: request.currentPassword, otpCode: request.otpCode, clientAddress: request.clientAddress,
            event: AuditEventType.mfaDeviceAddFailure)
        let secret = TOTP.generateSecret()
        let expires = clock.now().addingTimeInterval(Self.totpReplaceWindow)
        try await secrets.setPendingTOTP(user, secret, expires: expires)
        return AuthAPI.TOTPReplaceChallenge(secret: secret, user: user, clusterName: clusterName, expires: expires)
    }

    /// Confirms the new authenticator with one of its codes: it replaces the old one.
    public func confirmTOTPReplace(user: String, _ request: AuthAPI.ConfirmTOTPReplaceRequest) async throws {
        guard let secret = try await secrets.pendingTOTP(user) else {
            throw TeleportError.notFound("there is no new authenticator waiting for confirmation (it expires after 10 minutes); start again")
        }
        let now = clock.now()
        guard let step = TOTP.matchingStep(code: request.otpCode, secretBase32: secret, at: now, after: nil) else {
            try await emit(
                AuditEventType.mfaDeviceAddFailure,
                fields: [
                    "user": .string(user), "success": false, "error": "invalid code of the new authenticator",
                    "addr.remote": .string(request.clientAddress ?? ""),
                ])
            throw TeleportError.badParameter(
                "the code does not match the new authenticator: add it to your app (scan the QR code or enter the key), then enter the code it shows")
        }
        try await secrets.setTOTP(user, .init(secret: secret, lastStep: step))
        try await secrets.setTOTPAdded(user, now)
        try await secrets.setPendingTOTP(user, nil, expires: now)
        try await emit(
            AuditEventType.mfaDeviceAdd,
            fields: ["user": .string(user), "mfa_device_type": "TOTP", "success": true, "addr.remote": .string(request.clientAddress ?? "")])
    }
}
