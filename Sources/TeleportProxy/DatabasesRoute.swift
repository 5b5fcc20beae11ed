import Foundation
import Hummingbird
import Logging
import NIOSSL
import TeleportAccess
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto
import X509

/// `GET /webapi/databases?labels=k=v,...` for `tsh db ls`: the databases the logged-in user (the
/// TLS client certificate's) may see: their roles' `db_labels` allow them (roles as the proxy's
/// certificate cache has them now), and they match the label filter.
/// `POST /webapi/databases/login` for `tsh db login`: a copy of the caller's certificate that
/// carries the database route, from the auth service.
/// `GET /web/databases`: the web UI's list of the same databases for a signed-in browser, each with
/// the `tsh db connect` command that reaches it.
struct DatabasesRoute {
    let auth: AuthClient
    let clusterName: String
    /// The roles of these names, as the proxy's certificate cache has them.
    let roles: @Sendable ([String]) -> [Role]
    let logger: Logger

    /// The body of `POST /webapi/databases/login`.
    struct LoginBody: Decodable {
        var name: String
        var dbUser: String
        var dbName: String?

        enum CodingKeys: String, CodingKey {
            case name
            case dbUser = "db_user"
            case dbName = "db_name"
        }
    }

    func register(on router: Router<ProxyRequestContext>) {
        router.get("web/databases") { request, context in await page(request, context: context) }
        router.get("webapi/databases") { request, context -> Response in
            do {
                let identity = try await NodesRoute.user(context, clusterName: clusterName)
                let selector = try LabelSelector.parse(request.uri.queryParameters.get("labels") ?? "")
                let visible = try await visibleDatabases(identity).filter { selector.matches($0.allLabels) }
                return WebResponse.json(NodesRoute.htmlSafe(try ResourceCodec.json(visible)))
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
        router.post("webapi/databases/login") { request, context -> Response in
            do {
                let identity = try await NodesRoute.user(context, clusterName: clusterName)
                guard identity.systemRole == nil else { throw TeleportError.accessDenied("log in as a user first: tsh login") }
                var request = request
                let data = Data(try await request.boundedBody(limit: 16 * 1024).readableBytesView)
                let body: LoginBody
                do {
                    body = try JSONDecoder().decode(LoginBody.self, from: data)
                } catch {
                    throw TeleportError.badParameter("the body must be JSON with name, db_user and db_name")
                }
                guard try await visibleDatabases(identity).contains(where: { $0.name == body.name }) else {
                    throw TeleportError.notFound("database \"\(body.name.prefix(64))\" is not registered or your roles do not allow it (tsh db ls)")
                }
                guard let peer = try await context.channel.nioSSL_peerCertificate().get() else {
                    throw TeleportError.accessDenied("log in first: tsh login --proxy=<this proxy>")
                }
                let pem = try Certificate.fromDER(try peer.toDERBytes()).pemText()
                let issued = try await auth.databaseRouteCertificate(
                    AuthAPI.DatabaseRouteCertRequest(
                        userCertificatePEM: pem, serviceName: body.name, username: body.dbUser, database: body.dbName ?? ""))
                return WebResponse.json(try ResourceCodec.json(issued))
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
    }

    /// The databases whose labels the user's roles allow.
    func visibleDatabases(_ identity: X509Identity) async throws -> [DatabaseServer] {
        try await visibleDatabases(checker(roles: identity.roles, logins: identity.logins))
    }

    func visibleDatabases(_ checker: AccessChecker) async throws -> [DatabaseServer] {
        try await auth.databases().filter { (try? checker.checkDatabaseLabels($0.allLabels).allowed) == true }
    }

    func checker(roles names: [String], logins: [String]) -> AccessChecker {
        AccessChecker(roles: roles(names), traits: ["internal.logins": logins])
    }

    /// `GET /web/databases`: the page for the browser's web session (the login page without one).
    func page(_ request: Request, context: ProxyRequestContext) async -> Response {
        let gate = WebSessionGate(auth: auth, logger: logger)
        switch await gate.session(request, context: context, stateChanging: false) {
        case .success(let found):
            do {
                let checker = checker(roles: found.info.roles, logins: found.info.logins)
                let databases = try await visibleDatabases(checker).sorted { $0.name < $1.name }
                return WebUIPages.response(
                    WebUIPages.databases(found.info, clusterName: clusterName, databases: databases, dbUsers: Self.dbUsers(checker)))
            } catch {
                return gate.unavailable(error)
            }
        case .failure(let failure):
            guard failure.response.status == .unauthorized else { return failure.response }
            return Response(status: .seeOther, headers: [.location: "/web/login", .cacheControl: "no-store"])
        }
    }

    /// The database users the roles name (`*` and templates that expand to nothing are left out), so
    /// the page can offer them; empty when the roles allow any.
    static func dbUsers(_ checker: AccessChecker) -> [String] {
        let allowed = Set(checker.roles.flatMap { checker.expand($0.spec.allow?.dbUsers ?? []) })
        let denied = Set(checker.roles.flatMap { checker.expand($0.spec.deny?.dbUsers ?? []) })
        guard !allowed.contains("*") else { return [] }
        return allowed.subtracting(denied).sorted()
    }
}
