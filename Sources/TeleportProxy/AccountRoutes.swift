import Foundation
import Hummingbird
import Logging
import TeleportAPI
import TeleportAuthClient

/// The web UI's Account page (`/web/account`) and its JSON API, run at the auth service as the
/// signed-in user (``AuthClient/actingFor(webSession:)``), who may change only their own account:
///
/// - `POST /webapi/account/password` `{current_password, otp_code, new_password, new_password_confirm}`;
/// - `GET /webapi/account/totp` → `{enrolled, added}`;
/// - `POST /webapi/account/totp/begin` `{current_password, otp_code}` → `{secret, uri, expires}`;
/// - `POST /webapi/account/totp/confirm` `{otp_code}`: a code of the new secret replaces the old.
///
/// Every POST needs the session's CSRF token. Wrong passwords or codes count toward the login lockout.
struct AccountRoutes: Sendable {
    let auth: AuthClient
    let clusterName: String
    let logger: Logger

    var gate: WebSessionGate<AuthClient> { WebSessionGate(auth: auth, logger: logger) }
    var plumbing: ManagementRoutes { ManagementRoutes(auth: auth, clusterName: clusterName, logger: logger) }

    struct ChangePassword: Decodable {
        var currentPassword: String
        var otpCode: String?
        var newPassword: String
        var newPasswordConfirm: String

        enum CodingKeys: String, CodingKey {
            case currentPassword = "current_password"
            case otpCode = "otp_code"
            case newPassword = "new_password"
            case newPasswordConfirm = "new_password_confirm"
        }
    }

    struct Begin: Decodable {
        var currentPassword: String
        var otpCode: String?

        enum CodingKeys: String, CodingKey {
            case currentPassword = "current_password"
            case otpCode = "otp_code"
        }
    }

    struct Confirm: Decodable {
        var otpCode: String

        enum CodingKeys: String, CodingKey { case otpCode = "otp_code" }
    }

    static func code(_ text: String?) -> String? { text.map { $0.filter { !$0.isWhitespace } } }

    /// Adds the routes to `router`.
    func register(on router: Router<ProxyRequestContext>) {
        router.get("web/account") { request, context in
            await gate.page(request, context: context) { AccountPage.html($0, clusterName: clusterName) }
        }
        router.get("web/js/account.js") { _, _ in WebUIPages.asset(AccountPage.script, type: "text/javascript; charset=utf-8") }
        router.post("webapi/account/password") { request, context in
            await plumbing.handle(request, context, changing: true) { client in
                let change = try await plumbing.decode(ChangePassword.self, request)
                guard change.newPassword == change.newPasswordConfirm else {
                    throw TeleportError.badParameter("the new password and its confirmation do not match")
                }
                try await client.changePassword(
                    .init(
                        currentPassword: change.currentPassword, otpCode: Self.code(change.otpCode), newPassword: change.newPassword,
                        clientAddress: context.clientAddress))
                return .object(["status": "ok"])
            }
        }
        router.get("webapi/account/totp") { request, context in
            await plumbing.handle(request, context, changing: false) { client in
                let device = try await client.totpDevice()
                return .object(["enrolled": .bool(device.enrolled), "added": ManagementRoutes.time(device.added)])
            }
        }
        router.post("webapi/account/totp/begin") { request, context in
            await plumbing.handle(request, context, changing: true) { client in
                let begin = try await plumbing.decode(Begin.self, request)
                let challenge = try await client.beginTOTPReplace(
                    .init(currentPassword: begin.currentPassword, otpCode: Self.code(begin.otpCode), clientAddress: context.clientAddress))
                return .object([
                    "secret": .string(challenge.secret),
                    "uri": .string(OTPAuthURI.make(cluster: challenge.clusterName, user: challenge.user, secret: challenge.secret)),
                    "expires": ManagementRoutes.time(challenge.expires),
                ])
            }
        }
        router.post("webapi/account/totp/confirm") { request, context in
            await plumbing.handle(request, context, changing: true) { client in
                let confirm = try await plumbing.decode(Confirm.self, request)
                try await client.confirmTOTPReplace(.init(otpCode: Self.code(confirm.otpCode) ?? "", clientAddress: context.clientAddress))
                return .object(["status": "ok"])
            }
        }
    }
}
