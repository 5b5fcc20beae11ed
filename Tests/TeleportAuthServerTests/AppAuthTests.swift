import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import NIOCore
import TeleportAPI
import TeleportAuthServer
import TeleportBackend
import TeleportCrypto
import TeleportServices
import Testing
import X509

/// Application access at the auth service: the `jwt` CA (created at first start and on upgrade),
/// `POST /v1/presence/apps`, `POST /v1/certs/approute` (the proxy, for `tsh apps login`) and
/// `POST /v1/jwt/app` (an application service, for its own apps only).
@Suite("application access: app routes and JWTs (in process)")
struct AppAuthTests {
    /// Registers app `echo` (labels env=dev) served by a new App host; returns that host's UUID.
    static func registered(_ cluster: InProcessAuth) async throws -> String {
        let host = try await heartbeat(cluster)
        try await cluster.auth.stores.roles.create(
            Role(name: "apps-dev", spec: .init(allow: .init(appLabels: ["env": .init(["dev"])]))))
        try await cluster.auth.stores.users.create(User(name: "bob", roles: ["apps-dev"], logins: ["bob"]))
        try await cluster.auth.stores.users.create(User(name: "carol", roles: ["access"], logins: ["carol"]))
        return host
    }

    /// Sends app `echo`'s heartbeat from a new App host (`host`, or a new one); returns the host's UUID.
    static func heartbeat(_ cluster: InProcessAuth, host: String = UUID().uuidString.lowercased()) async throws -> String {
        try await cluster.routes(presenting: try await cluster.host(.app, uuid: host)) { client in
            let record = AppServer(
                name: "echo", labels: ["env": "dev"], spec: .init(uri: "http://localhost:8080", publicAddr: "echo.proxy.example", hostID: host, hostname: "apphost"))
            let sent = try await client.send(.post, "/v1/presence/apps", json: record)
            #expect(sent.status == .ok, "\(String(buffer: sent.body))")
            // An app at the cloud metadata address is refused.
            let metadata = AppServer(
                name: "meta", spec: .init(uri: "http://169.254.169.254/latest", publicAddr: "meta.proxy.example", hostID: host, hostname: "apphost"))
            let refused = try await client.send(.post, "/v1/presence/apps", json: metadata)
            #expect(refused.status == .badRequest && String(buffer: refused.body).contains("metadata"), "\(String(buffer: refused.body))")
        }
        return host
    }

    static func decode<T: Decodable>(_ type: T.Type, _ buffer: ByteBuffer) throws -> T {
        try ResourceCodec.jsonDecoder().decode(type, from: Data(buffer.readableBytesView))
    }

    @Test("the jwt CA: a P-256 key only, created at first start and on the start of a cluster that lacks it")
    func jwtCA() async throws {
        let clock = ManualClock()
        let backend = MemoryBackend(clock: clock)
        let first = try await AuthServer.open(backend: backend, audit: RecordedAudit(), clock: clock, configuredName: "apps.cluster", logger: Logger(label: "test"))
        let ca = try await first.certAuthority(.jwt)
        #expect(ca.spec.activeKeys.tls.isEmpty && ca.spec.activeKeys.ssh.isEmpty && ca.spec.activeKeys.jwt?.count == 1)
        #expect(ca.withoutSecrets.spec.activeKeys.jwt?.first?.privateKey == nil)
        try await backend.delete("/authorities/jwt")
        let upgraded = try await AuthServer.open(backend: backend, audit: RecordedAudit(), clock: clock, configuredName: "apps.cluster", logger: Logger(label: "test"))
        let added = try await upgraded.certAuthority(.jwt)
        #expect(added.spec.activeKeys.jwt?.first?.publicKey != ca.spec.activeKeys.jwt?.first?.publicKey)
    }

    @Test("the proxy gets a route certificate for an app the roles allow; the service gets a JWT that verifies")
    func routeAndJWT() async throws {
        let cluster = try await InProcessAuth.open(name: "apps.cluster")
        let host = try await Self.registered(cluster)
        let bob = try await cluster.user("bob", roles: ["apps-dev"])
        let routed = Mutex<Certificate?>(nil)
        try await cluster.routes(presenting: try await cluster.host(.proxy, uuid: UUID().uuidString.lowercased())) { client in
            let reply = try await client.send(.post, "/v1/certs/approute", json: AuthAPI.AppRouteCertRequest(userCertificatePEM: try bob.pemText(), appName: "echo"))
            #expect(reply.status == .ok, "\(String(buffer: reply.body))")
            let issued = try Self.decode(AuthAPI.DatabaseRouteCertResponse.self, reply.body)
            let certificate = try Certificate.fromPEM(issued.certificatePEM)
            #expect(try X509Identity(certificate: certificate).routeToApp == .init(name: "echo", publicAddr: "echo.proxy.example"))
            #expect(certificate.publicKey == bob.publicKey && certificate.notValidAfter <= bob.notValidAfter)
            routed.withLock { $0 = certificate }
        }
        let certificate = try #require(routed.withLock { $0 })
        let request = AuthAPI.AppJWTRequest(userCertificatePEM: try certificate.pemText(), appName: "echo")
        try await cluster.routes(presenting: try await cluster.host(.app, uuid: host)) { client in
            let reply = try await client.send(.post, "/v1/jwt/app", json: request)
            #expect(reply.status == .ok, "\(String(buffer: reply.body))")
            let token = try Self.decode(AuthAPI.AppJWTResponse.self, reply.body)
            let pem = try #require(try await cluster.auth.certAuthority(.jwt).spec.activeKeys.jwt?.first?.publicKey)
            let claims = try JWTSigner.verify(token.token, publicKey: try P256.Signing.PublicKey(pemRepresentation: pem))
            #expect(claims["username"] == "bob" && claims["roles"] == .array(["apps-dev"]) && claims["iss"] == "apps.cluster")
            #expect(claims["aud"] == .array(["http://localhost:8080"]))
            #expect(claims["exp"] == .int(Int(certificate.notValidAfter.timeIntervalSince1970)), "exp is the session's end")
            // The plain login certificate has no route: no token.
            let plain = try await client.send(.post, "/v1/jwt/app", json: AuthAPI.AppJWTRequest(userCertificatePEM: try bob.pemText(), appName: "echo"))
            #expect(plain.status == .forbidden, "\(String(buffer: plain.body))")
        }
        // Another application service, a proxy and the user itself get no token for this app.
        for caller in [
            try await cluster.host(.app, uuid: UUID().uuidString.lowercased()), try await cluster.host(.proxy, uuid: UUID().uuidString.lowercased()), bob,
        ] {
            try await cluster.routes(presenting: caller) { client in
                let reply = try await client.send(.post, "/v1/jwt/app", json: request)
                #expect(reply.status == .forbidden, "\(String(buffer: reply.body))")
            }
        }
    }

    @Test("refused: a user whose roles do not allow the app, an unknown app, a user asking for itself")
    func refusals() async throws {
        let cluster = try await InProcessAuth.open(name: "apps.cluster")
        _ = try await Self.registered(cluster)
        let bob = try await cluster.user("bob", roles: ["apps-dev"])
        let carol = try await cluster.user("carol", roles: ["access"])
        try await cluster.routes(presenting: try await cluster.host(.proxy, uuid: UUID().uuidString.lowercased())) { client in
            let denied = try await client.send(.post, "/v1/certs/approute", json: AuthAPI.AppRouteCertRequest(userCertificatePEM: try carol.pemText(), appName: "echo"))
            #expect(denied.status == .forbidden && String(buffer: denied.body).contains("app_labels"), "\(String(buffer: denied.body))")
            let unknown = try await client.send(.post, "/v1/certs/approute", json: AuthAPI.AppRouteCertRequest(userCertificatePEM: try bob.pemText(), appName: "nope"))
            #expect(unknown.status == .notFound, "\(String(buffer: unknown.body))")
        }
        try await cluster.routes(presenting: bob) { client in
            let reply = try await client.send(.post, "/v1/certs/approute", json: AuthAPI.AppRouteCertRequest(userCertificatePEM: try bob.pemText(), appName: "echo"))
            #expect(reply.status == .forbidden)
        }
        // Users see only the apps their roles allow.
        try await cluster.routes(presenting: carol) { client in
            let reply = try await client.execute(uri: "/v1/apps", method: .get)
            #expect(try Self.decode([AppServer].self, reply.body).isEmpty)
        }
        try await cluster.routes(presenting: bob) { client in
            let reply = try await client.execute(uri: "/v1/apps", method: .get)
            #expect(try Self.decode([AppServer].self, reply.body).map(\.name) == ["echo"])
        }
    }
}
