import Foundation
import Hummingbird
import NIOCore
import TeleportAPI
import TeleportCrypto
import TeleportServices

/// Resource writes beyond one create: batches applied all or nothing, and conditional updates.
///
/// | route | who | what |
/// | --- | --- | --- |
/// | `POST /v1/resources/batch` | Admin | `{"upsert": BOOL, "resources": [...]}`: every resource checked, then written in one transaction; audited per resource |
/// | `PUT /v1/resources` | Admin | one resource with `metadata.revision`: replaced only if still at that revision (`compare_failed` otherwise); audited |
extension AuthAPIRoutes {
    /// The largest batch body: a backup with both CAs' keys is tens of kilobytes; the YAML it came
    /// from was already limited to ``ResourceCodec/maxDocumentBytes``.
    static let maxBatchBytes = 4 * ResourceCodec.maxDocumentBytes
    /// The most resources in one batch.
    static let maxBatchResources = 1000

    func registerResourceRoutes(on v1: RouterGroup<AuthRequestContext>) {
        v1.post("resources/batch") { request, context in
            await APIResponse.handling(context) { try await applyBatch(request, context) }
        }
        v1.put("resources") { request, context in
            await APIResponse.handling(context) { try await update(request, context) }
        }
    }

    func applyBatch(_ request: Request, _ context: AuthRequestContext) async throws -> Response {
        let body = try await request.body.collect(upTo: Self.maxBatchBytes)
        guard let tree = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
            let trees = tree["resources"] as? [Any]
        else {
            throw TeleportError.badParameter("the request body is not {\"upsert\": BOOL, \"resources\": [...]}")
        }
        guard trees.count <= Self.maxBatchResources else {
            throw TeleportError.limitExceeded("a batch holds at most \(Self.maxBatchResources) resources")
        }
        let upsert = tree["upsert"] as? Bool ?? false
        let resources = try trees.enumerated().map { index, tree in
            try ResourceCodec.decode(tree: tree, source: trees.count > 1 ? "document \(index + 1)" : "request")
        }
        // Every document must be allowed before any is written (create, and update with -f).
        for kind in Set(resources.map(\.kind)).sorted() {
            try await authorize(context, kind: kind, verb: "create")
            if upsert { try await authorize(context, kind: kind, verb: "update") }
            if kind == CertAuthority.kind { try requireAdmin(context) }
        }
        if let written = try await trustWrite(resources, upsert: upsert, context: context) {
            return try APIResponse.json(AuthAPI.ResourceBatchResponse(results: written))
        }
        let results = try await auth.applyResources(resources, upsert: upsert)
        let caller = try caller(context)
        for resource in resources {
            try await auditWrite(resource: resource, deleted: false, caller: caller)
        }
        return try APIResponse.json(AuthAPI.ResourceBatchResponse(results: results))
    }

    func update(_ request: Request, _ context: AuthRequestContext) async throws -> Response {
        let body = try await request.body.collect(upTo: ResourceCodec.maxDocumentBytes)
        guard let tree = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) else {
            throw TeleportError.badParameter("the request body is not JSON")
        }
        let resource = try ResourceCodec.decode(tree: tree, source: "request")
        try await authorize(context, kind: resource.kind, verb: "update")
        if case .certAuthority = resource { try requireAdmin(context) }
        let stored = try await auth.updateResource(resource)
        let caller = try caller(context)
        if case .user = resource {
            try await auth.emit(
                AuditEventType.userUpdate,
                fields: ["user": .string(caller.identity.username), "name": .string(resource.name), "roles": .string(
                    (stored as? User)?.spec.roles.joined(separator: ",") ?? "")])
        } else {
            try await auditWrite(resource: resource, deleted: false, caller: caller)
        }
        return APIResponse.json(try ResourceCodec.json(redact(stored, withSecrets: false)))
    }
}
