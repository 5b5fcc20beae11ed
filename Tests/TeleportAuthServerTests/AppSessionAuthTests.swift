import Foundation
import TeleportAPI
@testable import TeleportAuthServer
import TeleportCrypto
import TeleportServices
import Testing
import X509

/// Browser app sessions at the auth service (in process, manual clock): launch tokens are good
/// once, for their app, for 60 s; an app session is for its app and ends with its web session.
@Suite("application access: launch tokens and app sessions (in process)")
struct AppSessionAuthTests {
    /// A cluster with app `echo` (env=dev), users bob (may use it) and carol (may not), and a web
    /// session for bob.
    static func cluster() async throws -> (InProcessAuth, webSession: String, expires: Date) {
        let cluster = try await InProcessAuth.open(name: "apps.cluster")
        _ = try await AppAuthTests.registered(cluster)
        let bob = try await cluster.auth.stores.users.get("bob")
        let info = try await cluster.auth.startWebSession(user: bob, cap: 3600)
        return (cluster, try #require(info.sessionID), info.expires)
    }

    static func refused(_ body: () async throws -> some Any, containing text: String, sourceLocation: SourceLocation = #_sourceLocation) async {
        do {
            _ = try await body()
            Issue.record("not refused (expected \(text))", sourceLocation: sourceLocation)
        } catch let error as TeleportError {
            #expect(error.message.contains(text), "\(error.message)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("a launch token redeems once, for its app only, and the app session carries the user's app route")
    func redeemOnce() async throws {
        let (cluster, web, expires) = try await Self.cluster()
        let auth = cluster.auth
        let launch = try await auth.launchApp(AuthAPI.AppLaunchRequest(webSessionID: web, appName: "echo"))
        #expect(launch.publicAddr == "echo.proxy.example" && WebSessionStoreShape.isToken(launch.token))
        let created = try await auth.redeemAppLaunch(AuthAPI.AppSessionRequest(secret: launch.token, appName: "echo"))
        #expect(created.user == "bob" && created.expires == expires)
        await Self.refused({ try await auth.redeemAppLaunch(AuthAPI.AppSessionRequest(secret: launch.token, appName: "echo")) }, containing: "already used")

        let identity = try await auth.authenticateAppSession(AuthAPI.AppSessionRequest(secret: created.sessionID, appName: "echo"))
        let certificate = try Certificate.fromPEM(identity.certificatePEM)
        let x509 = try X509Identity(certificate: certificate)
        #expect(x509.username == "bob" && x509.roles == ["apps-dev"] && x509.routeToApp?.name == "echo")
        #expect(certificate.notValidAfter <= expires.addingTimeInterval(1))
        await Self.refused(
            { try await auth.authenticateAppSession(AuthAPI.AppSessionRequest(secret: created.sessionID, appName: "other")) },
            containing: "for app echo, not other")

        // Another app's origin cannot redeem the token (and it is spent).
        let second = try await auth.launchApp(AuthAPI.AppLaunchRequest(webSessionID: web, appName: "echo"))
        await Self.refused({ try await auth.redeemAppLaunch(AuthAPI.AppSessionRequest(secret: second.token, appName: "other")) }, containing: "for app echo, not other")
        await Self.refused({ try await auth.redeemAppLaunch(AuthAPI.AppSessionRequest(secret: second.token, appName: "echo")) }, containing: "already used")
        // Garbage and unknown tokens.
        await Self.refused({ try await auth.redeemAppLaunch(AuthAPI.AppSessionRequest(secret: "x", appName: "echo")) }, containing: "unknown")
        await Self.refused(
            { try await auth.redeemAppLaunch(AuthAPI.AppSessionRequest(secret: String(repeating: "a", count: 64), appName: "echo")) }, containing: "unknown")
    }

    @Test("a launch token expires after 60 s; the app session ends with the web session's logout")
    func expiryAndLogout() async throws {
        let (cluster, web, _) = try await Self.cluster()
        let auth = cluster.auth
        let late = try await auth.launchApp(AuthAPI.AppLaunchRequest(webSessionID: web, appName: "echo"))
        cluster.clock.advance(by: 59)
        _ = try await AppAuthTests.heartbeat(cluster)  // presence records live 30 s; known keys are written in batches
        try await cluster.auth.presence.flush()
        // Within its 60 s a token still works.
        let inTime = try await auth.launchApp(AuthAPI.AppLaunchRequest(webSessionID: web, appName: "echo"))
        _ = try await auth.redeemAppLaunch(AuthAPI.AppSessionRequest(secret: inTime.token, appName: "echo"))
        cluster.clock.advance(by: 2)
        await Self.refused({ try await auth.redeemAppLaunch(AuthAPI.AppSessionRequest(secret: late.token, appName: "echo")) }, containing: "expired")
        _ = try await AppAuthTests.heartbeat(cluster)

        let launch = try await auth.launchApp(AuthAPI.AppLaunchRequest(webSessionID: web, appName: "echo"))
        let created = try await auth.redeemAppLaunch(AuthAPI.AppSessionRequest(secret: launch.token, appName: "echo"))
        _ = try await auth.authenticateAppSession(AuthAPI.AppSessionRequest(secret: created.sessionID, appName: "echo"))
        try await auth.deleteWebSession(AuthAPI.WebSessionIDRequest(sessionID: web))
        await Self.refused(
            { try await auth.authenticateAppSession(AuthAPI.AppSessionRequest(secret: created.sessionID, appName: "echo")) },
            containing: "launch the app again")
        await Self.refused({ try await auth.launchApp(AuthAPI.AppLaunchRequest(webSessionID: web, appName: "echo")) }, containing: "log in again")
    }

    @Test("a user whose roles do not allow the app gets no launch token")
    func rolesDecide() async throws {
        let (cluster, _, _) = try await Self.cluster()
        let carol = try await cluster.auth.stores.users.get("carol")
        let web = try #require(try await cluster.auth.startWebSession(user: carol, cap: 3600).sessionID)
        await Self.refused({ try await cluster.auth.launchApp(AuthAPI.AppLaunchRequest(webSessionID: web, appName: "echo")) }, containing: "denied")
        await Self.refused({ try await cluster.auth.launchApp(AuthAPI.AppLaunchRequest(webSessionID: web, appName: "nosuch")) }, containing: "not registered")
    }
}

/// The shape of secrets handed out (64 lowercase hex digits).
enum WebSessionStoreShape {
    static func isToken(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}
