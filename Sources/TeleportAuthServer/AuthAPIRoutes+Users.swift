import Foundation
import Hummingbird
import NIOCore
import TeleportAPI
import TeleportCrypto
import TeleportServices

extension AuthAPIRoutes {
    func registerUserRoutes(on v1: RouterGroup<AuthRequestContext>) {
        v1.post("users") { request, context in
            await APIResponse.handling(context) {
                try await authorize(context, kind: User.kind, verb: "create")
                let create = try await body(AuthAPI.CreateUserRequest.self, request)
                try await auth.requireExistingRoles(forNewUser: create.user)
                return try APIResponse.json(try await auth.createUser(create, by: try caller(context).identity.username))
            }
        }
        v1.post("users/:name/reset") { request, context in
            await APIResponse.handling(context) {
                try await authorize(context, kind: User.kind, verb: "update")
                let ttl = try await body([String: Double].self, request)["ttl_seconds"] ?? 8 * 3600
                let name = context.parameters.get("name") ?? ""
                return try APIResponse.json(try await auth.resetUser(name, ttl: ttl, by: try caller(context).identity.username))
            }
        }
        v1.get("usertokens/:token") { _, context in
            await APIResponse.handling(context) {
                try requireProxy(context)
                return try APIResponse.json(try await auth.userToken(context.parameters.get("token") ?? ""))
            }
        }
        v1.post("usertokens/complete") { request, context in
            await APIResponse.handling(context) {
                try requireProxy(context)
                try await auth.completeUserToken(try await body(AuthAPI.CompleteUserTokenRequest.self, request))
                return try APIResponse.json(["status": "ok"])
            }
        }
        v1.post("login") { request, context in
            await APIResponse.handling(context) {
                try requireProxy(context)
                return try APIResponse.json(try await auth.login(try await body(AuthAPI.LoginRequest.self, request)))
            }
        }
        v1.post("websessions") { request, context in
            await APIResponse.handling(context) {
                try requireProxy(context)
                return try APIResponse.json(try await auth.createWebSession(try await body(AuthAPI.CreateWebSessionRequest.self, request)))
            }
        }
        v1.post("websessions/authenticate") { request, context in
            await APIResponse.handling(context) {
                try requireProxy(context)
                return try APIResponse.json(try await auth.authenticateWebSession(try await body(AuthAPI.WebSessionIDRequest.self, request)))
            }
        }
        v1.post("websessions/delete") { request, context in
            await APIResponse.handling(context) {
                try requireProxy(context)
                try await auth.deleteWebSession(try await body(AuthAPI.WebSessionIDRequest.self, request))
                return try APIResponse.json(["status": "ok"])
            }
        }
        v1.post("certs/user") { request, context in
            await APIResponse.handling(context) {
                try requireAdmin(context)
                let sign = try await body(AuthAPI.SignUserRequest.self, request)
                guard sign.ttlSeconds > 0, sign.ttlSeconds <= 366 * 86400 else {
                    throw TeleportError.badParameter("--ttl must be positive and at most a year")
                }
                let admin = try caller(context).identity.username
                let fields: [String: JSONValue] = ["user": .string(admin), "identity": .string(sign.user), "cert_type": "user"]
                let issued = try await auth.auditingCertificate(fields) { _ in
                    // tctl generates the keys and signs for them; a key certified for another user
                    // is refused (issueUserCertificates), and so is any refusal audited.
                    let keys = try auth.proveKeys(
                        sshPublicKey: sign.sshPublicKey, tlsPublicKeyPEM: sign.tlsPublicKeyPEM, user: sign.user, proof: sign.keyProof,
                        purpose: .signUser)
                    let user = try await auth.stores.users.get(sign.user)
                    return try await auth.issueUserCertificates(user: user, keys: keys, ttl: sign.ttlSeconds)
                }
                return try APIResponse.json(issued)
            }
        }
        registerDatabaseCertRoute(on: v1)
        v1.post("certs/host") { request, context in
            await APIResponse.handling(context) {
                try requireAdmin(context)
                let sign = try await body(AuthAPI.SignHostRequest.self, request)
                let fields: [String: JSONValue] = [
                    "user": .string(try caller(context).identity.username), "identity": .string(sign.principals.joined(separator: ",")),
                    "cert_type": "host",
                ]
                let issued = try await auth.auditingCertificate(fields) { _ in try await auth.signHost(sign) }
                return try APIResponse.json(issued)
            }
        }
    }

    func registerDatabaseCertRoute(on v1: RouterGroup<AuthRequestContext>) {
        v1.post("certs/db") { request, context in
            await APIResponse.handling(context) {
                let sign = try await body(AuthAPI.SignDatabaseRequest.self, request)
                // A database service asks for short-lived client certificates of database users
                // (the connection it is about to open upstream); everything else is tctl's.
                if try caller(context).kind == .system(.db) {
                    guard sign.usage == .client, sign.ttlSeconds <= AuthServer.maximumDatabaseSessionCertificateTTL else {
                        throw TeleportError.accessDenied("a database service may only ask for client certificates of at most 12 hours")
                    }
                } else {
                    try requireAdmin(context)
                }
                let identity = sign.usage == .server ? sign.hosts.joined(separator: ",") : (sign.user ?? "")
                let fields: [String: JSONValue] = [
                    "user": .string(try caller(context).identity.username), "identity": .string(String(identity.prefix(512))),
                    "cert_type": .string("db_\(sign.usage.rawValue)"),
                ]
                let issued = try await auth.auditingCertificate(fields) { _ in try await auth.signDatabase(sign) }
                return try APIResponse.json(issued)
            }
        }
        v1.post("certs/dbroute") { request, context in
            await APIResponse.handling(context) {
                try requireProxy(context)
                let sign = try await body(AuthAPI.DatabaseRouteCertRequest.self, request)
                let fields: [String: JSONValue] = [
                    "cert_type": "db_route", "db_service": .string(String(sign.serviceName.prefix(256))),
                    "db_user": .string(String(sign.username.prefix(256))), "db_name": .string(String(sign.database.prefix(256))),
                ]
                let issued = try await auth.auditingCertificate(fields) { fields in
                    let (issued, user) = try await auth.issueDatabaseRouteCertificate(sign)
                    fields["user"] = .string(user)
                    return issued
                }
                return try APIResponse.json(issued)
            }
        }
    }

    func requireProxy(_ context: AuthRequestContext) throws {
        let caller = try caller(context)
        guard caller.kind == .system(.proxy) || caller.isAdmin else {
            throw TeleportError.accessDenied("only the proxy may make this call")
        }
    }

    func body<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        let buffer = try await request.body.collect(upTo: 64 * 1024)
        do {
            return try ResourceCodec.jsonDecoder().decode(type, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw TeleportError.badParameter("the request body is not valid: \(DecodingErrorText.describe(error))")
        }
    }
}
