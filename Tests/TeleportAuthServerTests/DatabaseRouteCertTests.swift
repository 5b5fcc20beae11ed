import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import TeleportAPI
import TeleportAuthServer
import TeleportCrypto
import TeleportServices
import Testing
import X509

/// `POST /v1/certs/dbroute` (the proxy, for `tsh db login`) and the database service's own
/// `POST /v1/certs/db` calls: who may ask, and which certificates are refused.
@Suite("database route certificates (in process)")
struct DatabaseRouteCertTests {
    static func registered(_ cluster: InProcessAuth) async throws {
        let host = UUID().uuidString.lowercased()
        try await cluster.routes(presenting: try await cluster.host(.db, uuid: host)) { client in
            let record = DatabaseServer(
                name: "sales", labels: ["env": "dev"],
                spec: .init(protocol: .postgres, uri: "localhost:5432", hostID: host, hostname: "dbhost"))
            let sent = try await client.send(.post, "/v1/presence/databases", json: record)
            #expect(sent.status == .ok)
        }
        var bob = User(name: "bob", roles: ["access"], logins: ["bob"])
        bob.spec.traits["db_users"] = ["alice", "reports"]
        try await cluster.auth.stores.users.create(bob)
    }

    static func request(_ certificate: Certificate, service: String = "sales", user: String = "alice") throws -> AuthAPI.DatabaseRouteCertRequest {
        AuthAPI.DatabaseRouteCertRequest(userCertificatePEM: try certificate.pemText(), serviceName: service, username: user, database: "postgres")
    }

    @Test("the proxy gets the user's certificate with the route, the same key and no later expiry")
    func routeCertificate() async throws {
        let cluster = try await InProcessAuth.open(name: "dbroute.cluster")
        try await Self.registered(cluster)
        let bob = try await cluster.user("bob", roles: ["access"])
        try await cluster.routes(presenting: try await cluster.host(.proxy, uuid: UUID().uuidString.lowercased())) { client in
            let reply = try await client.send(.post, "/v1/certs/dbroute", json: try Self.request(bob))
            #expect(reply.status == .ok, "\(String(buffer: reply.body))")
            let issued = try ResourceCodec.jsonDecoder().decode(AuthAPI.DatabaseRouteCertResponse.self, from: Data(reply.body.readableBytesView))
            let certificate = try Certificate.fromPEM(issued.certificatePEM)
            let identity = try X509Identity(certificate: certificate)
            #expect(identity.username == "bob" && identity.roles == ["access"])
            #expect(identity.routeToDatabase == .init(serviceName: "sales", protocol: "postgres", username: "alice", database: "postgres"))
            #expect(certificate.publicKey == bob.publicKey)
            #expect(identity.traits?["db_users"] == ["alice", "reports"], "the user's traits, for {{internal.db_users}}")
            #expect(certificate.notValidAfter <= bob.notValidAfter)
            #expect(try await cluster.auth.tlsAuthority(.user).signed(certificate))
        }
    }

    @Test("refused: not a proxy, another CA, expired, a host certificate, an unknown database, a bad db user")
    func refusals() async throws {
        let cluster = try await InProcessAuth.open(name: "dbroute.cluster")
        try await Self.registered(cluster)
        let bob = try await cluster.user("bob", roles: ["access"])
        // A user may not mint route certificates for itself (only through the proxy).
        try await cluster.routes(presenting: bob) { client in
            let reply = try await client.send(.post, "/v1/certs/dbroute", json: try Self.request(bob))
            #expect(reply.status == .forbidden)
        }
        let other = try await InProcessAuth.open(name: "dbroute.cluster")
        try await other.auth.stores.users.create(User(name: "bob", roles: ["access"], logins: ["bob"]))
        let foreign = try await other.user("bob", roles: ["access"])
        let host = try await cluster.host(.node, uuid: UUID().uuidString.lowercased())
        try await cluster.routes(presenting: try await cluster.host(.proxy, uuid: UUID().uuidString.lowercased())) { client in
            for (name, request, status) in [
                ("another CA", try Self.request(foreign), HTTPResponse.Status.forbidden),
                ("a host certificate", try Self.request(host), .forbidden),
                ("an unknown database", try Self.request(bob, service: "nope"), .notFound),
                ("a db user with a slash", try Self.request(bob, user: "a/b"), .badRequest),
            ] {
                let reply = try await client.send(.post, "/v1/certs/dbroute", json: request)
                #expect(reply.status == status, "\(name): \(String(buffer: reply.body))")
            }
        }
        cluster.clock.advance(by: 3601)
        try await cluster.routes(presenting: try await cluster.host(.proxy, uuid: UUID().uuidString.lowercased())) { client in
            let reply = try await client.send(.post, "/v1/certs/dbroute", json: try Self.request(bob))
            #expect(reply.status == .forbidden && String(buffer: reply.body).contains("expired"), "\(String(buffer: reply.body))")
        }
    }

    @Test("a database service may ask for short-lived client certificates only")
    func databaseServiceCertificates() async throws {
        let cluster = try await InProcessAuth.open(name: "dbroute.cluster")
        let key = P256.Signing.PrivateKey()
        @Sendable func request(_ usage: AuthAPI.SignDatabaseRequest.Usage, ttl: Double) throws -> AuthAPI.SignDatabaseRequest {
            let hosts = usage == .server ? ["db.example.com"] : []
            let user: String? = usage == .client ? "alice" : nil
            return AuthAPI.SignDatabaseRequest(
                usage: usage, hosts: hosts, user: user, publicKeyPEM: key.publicKey.pemRepresentation, ttlSeconds: ttl,
                keyProof: try DatabaseCertProof.sign(usage: usage, hosts: hosts, user: user, key: key, now: cluster.clock.now()))
        }
        try await cluster.routes(presenting: try await cluster.host(.db, uuid: UUID().uuidString.lowercased())) { client in
            let client1 = try request(.client, ttl: 3600)
            let server = try request(.server, ttl: 3600)
            let long = try request(.client, ttl: 86400)
            #expect(try await client.send(.post, "/v1/certs/db", json: client1).status == .ok)
            #expect(try await client.send(.post, "/v1/certs/db", json: server).status == .forbidden)
            #expect(try await client.send(.post, "/v1/certs/db", json: long).status == .forbidden)
        }
        try await cluster.routes(presenting: try await cluster.host(.node, uuid: UUID().uuidString.lowercased())) { client in
            let asked = try request(.client, ttl: 3600)
            #expect(try await client.send(.post, "/v1/certs/db", json: asked).status == .forbidden)
        }
    }
}
