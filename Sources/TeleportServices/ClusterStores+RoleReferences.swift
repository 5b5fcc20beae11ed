public import TeleportAPI

/// Users name their roles; the stores keep those references intact: a user cannot be given a role
/// that does not exist (checked by the auth service's writes), and a role cannot be deleted while
/// a user holds it (checked here, in ``ClusterStores/delete(kind:name:)``, so that every path is
/// covered).
extension ClusterStores {
    /// The names of the users whose `spec.roles` include `role`, sorted.
    public func holders(ofRole role: String) async throws -> [String] {
        try await users.list().filter { $0.spec.roles.contains(role) }.map(\.name).sorted()
    }

    /// Refuses to let `role` go while users hold it; the message names them and how to move them.
    public func requireUnused(role: String) async throws {
        let holders = try await holders(ofRole: role)
        guard !holders.isEmpty else { return }
        let shown = holders.prefix(5).joined(separator: ", ")
        let more = holders.count > 5 ? " and \(holders.count - 5) more" : ""
        let noun = holders.count == 1 ? "user" : "users"
        throw TeleportError.badParameter(
            "role \"\(role)\" is still held by \(noun) \(shown)\(more); move them to other roles first "
                + "(tctl users update NAME --set-roles=ROLE,...), then delete it")
    }

    /// Refuses a user whose roles do not exist, neither stored nor in `alsoDefined` (roles written
    /// in the same batch).
    public func requireExistingRoles(of user: User, alsoDefined: Set<String> = []) async throws {
        guard !user.spec.roles.isEmpty else { return }
        let known = Set(try await roles.list().map(\.name)).union(alsoDefined)
        let missing = user.spec.roles.filter { !known.contains($0) }
        guard !missing.isEmpty else { return }
        let names = missing.map { "\"\($0)\"" }.joined(separator: ", ")
        let verb = missing.count == 1 ? "role \(names) does not exist" : "roles \(names) do not exist"
        throw TeleportError.badParameter("user \"\(user.name)\": \(verb); create it first (tctl get roles lists the existing roles)")
    }
}
