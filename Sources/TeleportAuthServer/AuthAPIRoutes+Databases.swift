import Foundation
import Hummingbird
import TeleportAccess
public import TeleportAPI
import TeleportBackend
import TeleportCrypto
import TeleportServices

extension AuthAPIRoutes {
    /// `POST /v1/presence/databases` (a database service: records naming its own host only) and
    /// `GET /v1/databases` (the administrator and proxies: every database; users: those their
    /// roles' `db_labels` allow).
    func registerDatabaseRoutes(on v1: RouterGroup<AuthRequestContext>) {
        v1.post("presence/databases") { request, context in
            await APIResponse.handling(context) { try await databaseHeartbeat(request, context) }
        }
        v1.get("databases") { _, context in
            await APIResponse.handling(context) {
                let caller = try caller(context)
                let all = try await auth.databases()
                switch caller.kind {
                case .system(.admin), .system(.proxy):
                    return try APIResponse.json(all)
                case .user:
                    return try APIResponse.json(try await auth.databases(all, visibleTo: caller.identity.roles))
                default:
                    throw TeleportError.accessDenied("only users, proxies and the administrator list databases")
                }
            }
        }
    }

    /// A database service's heartbeat for one database: the record must name the caller's host
    /// (`spec.host_id`); it expires like a node's (``Presence/nodeTTL``).
    func databaseHeartbeat(_ request: Request, _ context: AuthRequestContext) async throws -> Response {
        let caller = try caller(context)
        guard caller.kind == .system(.db) || caller.isAdmin else {
            throw TeleportError.accessDenied("only database services send database heartbeats")
        }
        let body = Data(try await request.body.collect(upTo: ResourceCodec.maxDocumentBytes).readableBytesView)
        var database = try ownHeartbeat(DatabaseServer.self, body: body, caller: caller, name: \.spec.hostID, what: "database service")
        try database.validate()
        database.metadata.expires = nil
        database.metadata.revision = nil
        let expires = auth.clock.now().addingTimeInterval(Presence.nodeTTL)
        try await auth.presence.record(
            Item(key: DatabaseServer.storagePrefix + database.name, value: try ResourceCodec.json(database), expires: expires))
        return try APIResponse.json(["status": "ok"])
    }
}

extension AuthServer {
    /// Every registered database (expired records left out), sorted by name.
    public func databases() async throws -> [DatabaseServer] {
        let now = clock.now()
        return try await stores.list(kind: DatabaseServer.kind).compactMap { $0 as? DatabaseServer }
            .filter { $0.metadata.expires.map { $0 > now } ?? true }
            .sorted { $0.name < $1.name }
    }

    /// The databases whose labels the roles named `roleNames` (as they are now) allow.
    public func databases(_ all: [DatabaseServer], visibleTo roleNames: [String]) async throws -> [DatabaseServer] {
        let checker = AccessChecker(roles: await existingRoles(roleNames), traits: [:])
        return all.filter { (try? checker.checkDatabaseLabels($0.allLabels).allowed) == true }
    }
}
