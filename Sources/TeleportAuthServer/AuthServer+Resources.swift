public import TeleportAPI
import TeleportBackend
import TeleportCrypto
import TeleportServices

extension AuthServer {
    /// Writes several resources, all or nothing (`tctl create [-f] FILE`).
    ///
    /// Everything is checked before anything is written: names are unique within the batch, users'
    /// roles exist (stored, or defined in the same batch) and, without `upsert`, no resource exists
    /// yet. The writes then go to the backend in one transaction. (Between the check and the write
    /// another writer may create one of the names; the batch then replaces it, as `-f` would.)
    public func applyResources(_ resources: [AnyResource], upsert: Bool) async throws -> [AuthAPI.ResourceWriteResult] {
        guard !resources.isEmpty else { throw TeleportError.badParameter("no resource to write") }
        var stored: [AnyResource] = []
        var seen: [String: Int] = [:]
        for (index, resource) in resources.enumerated() {
            let storable = try Self.storedForm(resource)
            let key = "\(storable.kind)/\(storable.name)"
            if let first = seen[key] {
                throw TeleportError.badParameter(
                    "documents \(first + 1) and \(index + 1) both define \(resource.kind) \"\(Self.shownName(resource))\"")
            }
            seen[key] = index
            stored.append(storable)
        }
        let batchRoles = Set(stored.compactMap { resource -> String? in
            if case .role(let role) = resource { return role.name }
            return nil
        })
        var results: [AuthAPI.ResourceWriteResult] = []
        for (resource, original) in zip(stored, resources) {
            if case .user(let user) = resource {
                try await stores.requireExistingRoles(of: user, alsoDefined: batchRoles)
            }
            let exists = try await stores.exists(kind: resource.kind, name: resource.name)
            if exists, !upsert {
                throw TeleportError.alreadyExists(
                    "\(resource.kind) \"\(Self.shownName(original))\" already exists (use tctl create -f to overwrite); nothing was written")
            }
            results.append(.init(kind: resource.kind, name: Self.shownName(original), created: !exists))
        }
        if !upsert, stored.count == 1, let only = stored.first {
            // One new resource: the backend's create (absent, or fail) decides, so of two auth
            // servers creating the same name at once exactly one succeeds.
            do {
                try await stores.backend.create(try stores.item(for: only))
            } catch let error as TeleportError where error.code == .alreadyExists {
                throw TeleportError.alreadyExists(
                    "\(only.kind) \"\(Self.shownName(resources[0]))\" already exists (use tctl create -f to overwrite); nothing was written")
            }
        } else {
            // Several documents are written in one transaction (all or none); the existence check
            // above is not part of it (see docs/architecture.md, "High availability").
            try await stores.putAll(stored)
        }
        if stored.contains(where: { $0.kind == CertAuthority.kind }) { forgetCachedAuthorities() }
        return results
    }

    /// Replaces one resource if nobody changed it since it was read (`tctl edit`, `tctl users
    /// update`): `metadata.revision` must be the revision that was read. Only the kinds in
    /// ``AnyResource/editableKinds``.
    public func updateResource(_ resource: AnyResource) async throws -> any Resource {
        if let reason = AnyResource.whyNotEditable(resource.kind) { throw TeleportError.badParameter(reason) }
        if case .user(let user) = resource { try await stores.requireExistingRoles(of: user) }
        return try await stores.update(resource)
    }

    /// Refuses a new user whose roles do not exist (`tctl users add --roles`); no roles means the
    /// default `access`.
    public func requireExistingRoles(forNewUser user: User) async throws {
        var checked = user
        if checked.spec.roles.isEmpty { checked.spec.roles = ["access"] }
        try await stores.requireExistingRoles(of: checked)
    }

    /// Tokens are stored under the hash of their value (their name in the YAML).
    static func storedForm(_ resource: AnyResource) throws -> AnyResource {
        guard case .token(var token) = resource else { return resource }
        token.metadata.name = SecretHash.hex(token.name)
        return .token(token)
    }

    /// A resource's name for messages and replies: a token's value is masked.
    static func shownName(_ resource: AnyResource) -> String {
        if case .token = resource { return TokenService.mask(resource.name) }
        return resource.name
    }
}
