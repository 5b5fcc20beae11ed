public import Foundation
public import TeleportAPI
import NIOHTTP1

extension AuthClient {
    /// Changes the signed-in user's password (a client ``actingFor(webSession:)`` only).
    public func changePassword(_ request: AuthAPI.ChangePasswordRequest) async throws {
        _ = try await call(.POST, "account/password", body: try ResourceCodec.json(request))
    }

    /// The signed-in user's authenticator enrolment.
    public func totpDevice() async throws -> AuthAPI.TOTPDeviceInfo {
        try decode(AuthAPI.TOTPDeviceInfo.self, try await call(.GET, "account/totp"))
    }

    /// Starts replacing the signed-in user's authenticator: the new secret to enrol.
    public func beginTOTPReplace(_ request: AuthAPI.BeginTOTPReplaceRequest) async throws -> AuthAPI.TOTPReplaceChallenge {
        try decode(AuthAPI.TOTPReplaceChallenge.self, try await call(.POST, "account/totp/begin", body: try ResourceCodec.json(request)))
    }

    /// Confirms the new authenticator with one of its codes.
    public func confirmTOTPReplace(_ request: AuthAPI.ConfirmTOTPReplaceRequest) async throws {
        _ = try await call(.POST, "account/totp/confirm", body: try ResourceCodec.json(request))
    }
}
