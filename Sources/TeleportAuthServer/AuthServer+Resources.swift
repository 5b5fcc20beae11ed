public import TeleportAPI
import TeleportBackend
import TeleportCrypto
import TeleportServices

extension AuthServer {
    /// Writes several resources, all or nothing (`tctl create [-f] FILE`).
    ///
    /// Everything is checked before anything is written: names are unique within the batch, users'
    /// roles exist (stored, or defined in the same batch) and, without `upsert`, no resource exists
    /// yet. The writes then go to the backend in one transaction; without `upsert` it is the
    /// backend's conditional batch, so a name another writer created between the check and the
    /// write fails the whole batch (nothing written) instead of being replaced.
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
        for (index, (resource, original)) in zip(stored, resources).enumerated() {
            do {
                if case .user(let user) = resource {
                    try await stores.requireExistingRoles(of: user, alsoDefined: batchRoles)
                }
            } catch let error as TeleportError where resources.count > 1 {
                // Which document of the file, and that none of it was written.
                var named = error
                named.message = "\(Self.document(index, of: resources.count))\(error.message); nothing was written"
                throw named
            }
            let exists = try await stores.exists(kind: resource.kind, name: resource.name)
            if exists, !upsert {
                throw TeleportError.alreadyExists(
                    "\(Self.document(index, of: resources.count))\(resource.kind) \"\(Self.shownName(original))\" already exists (use tctl create -f to overwrite); nothing was written")
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
        } else if !upsert {
            // Several new documents: the backend's conditional batch writes all of them only if
            // none exists, in one transaction, so a resource created meanwhile (another auth
            // server's `tctl create`) fails the whole file and nothing of it is written.
            do {
                try await stores.createAll(stored)
            } catch let error as TeleportError where error.code == .alreadyExists {
                for (index, (resource, original)) in zip(stored, resources).enumerated() {
                    if (try? await stores.exists(kind: resource.kind, name: resource.name)) == true {
                        throw TeleportError.alreadyExists(
                            "\(Self.document(index, of: resources.count))\(resource.kind) \"\(Self.shownName(original))\" was created meanwhile (use tctl create -f to overwrite); nothing was written")
                    }
                }
                throw TeleportError.alreadyExists("\(error.message) (created meanwhile); nothing was written")
            }
        } else {
            // `-f`: every document is written in one transaction (all or none).
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

    /// "document N of M: " for a file of several documents, nothing for one.
    static func document(_ index: Int, of count: Int) -> String {
        count > 1 ? "document \(index + 1) of \(count): " : ""
    }

    /// A resource's name for messages and replies: a token's value is masked.
    static func shownName(_ resource: AnyResource) -> String {
        if case .token = resource { return TokenService.mask(resource.name) }
        return resource.name
    }
}
