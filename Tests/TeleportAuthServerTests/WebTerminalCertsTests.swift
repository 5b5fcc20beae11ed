import Crypto
import Foundation
import Logging
import Synchronization
import TeleportAPI
@testable import TeleportAuthServer
import TeleportBackend
import TeleportCrypto
import TeleportEvents
import TeleportServices
import Testing

/// Keeps every audit event, for the assertions.
final class KeptAudit: AuditEmitter {
    let events = Mutex<[AuditEvent]>([])
    func emit(_ event: AuditEvent) async throws { events.withLock { $0.append(event) } }
    var all: [AuditEvent] { events.withLock { $0 } }
}

/// The web terminal's certificates (`POST /v1/websessions/certs`), on a manual clock: only a proxy
/// acting for a web session gets one, for a key it proves to hold, never outliving the session.
@Suite("web terminal certificates in the auth service")
struct WebTerminalCertsTests {
    /// `ann` (roles `access`, max_session_ttl 2h) with a web session; the caller the proxy becomes.
    static func signedIn() async throws -> (auth: AuthServer, clock: ManualClock, audit: KeptAudit, caller: Caller, session: AuthAPI.WebSessionInfo) {
        let clock = ManualClock()
        let audit = KeptAudit()
        var settings = AuthSettings(bcryptCost: 4)
        settings.webIdleTimeout = 7200
        let auth = try await AuthServer.open(
            backend: MemoryBackend(clock: clock), audit: audit, clock: clock, configuredName: "web.cluster", settings: settings,
            logger: Logger(label: "test"))
        let created = try await auth.createUser(
            AuthAPI.CreateUserRequest(user: User(name: "ann", roles: ["access"], logins: ["ann", "root"]), ttlSeconds: 3600), by: "admin")
        let info = try await auth.userToken(created.token)
        let secret = try #require(info.totpSecret.flatMap { Base32.decode($0) })
        try await auth.completeUserToken(
            AuthAPI.CompleteUserTokenRequest(
                token: created.token, password: WebSessionAuthTests.password,
                otpCode: TOTP.code(secret: secret, step: TOTP.step(at: clock.now())), clientAddress: nil))
        var role = try await auth.stores.roles.get("access")
        var options = role.spec.options ?? Role.Options()
        options.maxSessionTTL = "2h0m0s"
        role.spec.options = options
        try await auth.stores.roles.upsert(role)
        let session = try await auth.createWebSession(WebSessionAuthTests.login(clock, secret))
        let id = try #require(session.sessionID)
        let caller = Caller(
            kind: .user, identity: X509Identity(username: "ann", roles: ["access"], logins: ["ann", "root"], clusterName: "web.cluster"),
            webSessionID: id)
        return (auth, clock, audit, caller, session)
    }

    /// A request for fresh keys, signed with them for `user` (`purpose` as the proxy would).
    static func request(user: String = "ann", ttl: Double = 0, purpose: LoginProof.Purpose = .webSession, at now: Date) throws
        -> AuthAPI.SignUserRequest
    {
        let ssh = Curve25519.Signing.PrivateKey()
        let tls = P256.Signing.PrivateKey()
        return AuthAPI.SignUserRequest(
            user: user, sshPublicKey: SSHPublicKey.ed25519(ssh.publicKey).authorizedKeyLine(), tlsPublicKeyPEM: tls.publicKey.pemRepresentation,
            ttlSeconds: ttl, keyProof: try LoginProof.sign(purpose: purpose, user: user, sshKey: ssh, tlsKey: tls, now: now))
    }

    @Test("the session's user gets a certificate with the roles' logins, capped by the roles and the session's hard end; audited")
    func issues() async throws {
        let (auth, clock, audit, caller, session) = try await Self.signedIn()
        let issued = try await auth.webSessionCertificates(for: caller, try Self.request(at: clock.now()))
        let certificate = try SSHCertificate(authorizedKeyLine: issued.sshCertificate)
        #expect(certificate.keyID == "ann")
        #expect(Set(certificate.validPrincipals) == ["ann", "root"])
        #expect(certificate.validBefore <= session.expires)
        #expect(abs(certificate.validBefore.timeIntervalSince(session.expires)) < 2, "no TTL asked: the session's end (2 h)")
        // A short TTL asked for is kept.
        let short = try await auth.webSessionCertificates(for: caller, try Self.request(ttl: 60, at: clock.now()))
        #expect(try SSHCertificate(authorizedKeyLine: short.sshCertificate).validBefore == clock.now().addingTimeInterval(60))
        // Later in the session: a long TTL stops at the session's hard end.
        clock.advance(by: 5400)
        _ = try await auth.authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: try #require(caller.webSessionID)))
        let late = try await auth.webSessionCertificates(for: caller, try Self.request(ttl: 86400, at: clock.now()))
        let lateBefore = try SSHCertificate(authorizedKeyLine: late.sshCertificate).validBefore
        #expect(lateBefore <= session.expires && lateBefore > clock.now())
        let created = audit.all.filter { $0.event == "cert.create" && $0.code == AuditEventType.certCreate.1 }
        #expect(created.count == 3)
        #expect(created.allSatisfy { $0.fields["method"] == "web_session" && $0.fields["user"] == "ann" })
    }

    @Test("the TTL never passes the roles' cap nor the session's end")
    func ttlCap() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(AuthServer.webTerminalTTL(requested: 0, roleCap: 7200, sessionEnd: now.addingTimeInterval(600), now: now) == 600)
        #expect(AuthServer.webTerminalTTL(requested: 60, roleCap: 7200, sessionEnd: now.addingTimeInterval(600), now: now) == 60)
        #expect(AuthServer.webTerminalTTL(requested: 9000, roleCap: 7200, sessionEnd: now.addingTimeInterval(9999), now: now) == 7200)
        #expect(AuthServer.webTerminalTTL(requested: 60, roleCap: 7200, sessionEnd: now.addingTimeInterval(-1), now: now) == 0)
    }

    @Test("callers not acting for a web session, an ended session, another user or a bad proof are refused (403) and audited")
    func refusals() async throws {
        let (auth, clock, audit, caller, _) = try await Self.signedIn()
        // The proxy itself, and a user with a certificate (tsh): not acting for a web session.
        var proxy = caller
        proxy.kind = .system(.proxy)
        proxy.webSessionID = nil
        var tshUser = caller
        tshUser.webSessionID = nil
        for other in [proxy, tshUser] {
            await #expect(throws: TeleportError.accessDenied("")) {
                try await auth.webSessionCertificates(for: other, try Self.request(at: clock.now()))
            }
        }
        // A proof for another user, or made for `tsh login`.
        await #expect(throws: TeleportError.accessDenied("")) {
            try await auth.webSessionCertificates(for: caller, try Self.request(user: "bob", at: clock.now()))
        }
        await #expect(throws: TeleportError.accessDenied("")) {
            try await auth.webSessionCertificates(for: caller, try Self.request(purpose: .login, at: clock.now()))
        }
        // The session is valid: the refusals above are the checks', not an ended session's.
        _ = try await auth.authenticateWebSession(AuthAPI.WebSessionIDRequest(sessionID: try #require(caller.webSessionID)))
        // After logout the session's id gets nothing.
        try await auth.deleteWebSession(AuthAPI.WebSessionIDRequest(sessionID: try #require(caller.webSessionID)))
        await #expect(throws: TeleportError.accessDenied("")) {
            try await auth.webSessionCertificates(for: caller, try Self.request(at: clock.now()))
        }
        let failures = audit.all.filter { $0.event == "cert.create" && $0.code == AuditEventType.certCreateFailure.1 }
        #expect(failures.count == 3, "refusals past the caller check are audited")
        #expect(failures.allSatisfy { $0.fields["method"] == "web_session" && $0.fields["success"] == false })
    }
}
