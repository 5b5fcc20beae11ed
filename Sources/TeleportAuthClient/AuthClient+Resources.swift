public import Foundation
public import TeleportAPI
import NIOHTTP1

extension AuthClient {
    /// Writes every resource or none (Admin; `tctl create [-f]`): the server checks them all
    /// (unique names, users' roles exist, nothing exists yet unless `upsert`) before one transaction.
    public func applyResources(_ resources: [AnyResource], upsert: Bool) async throws -> [AuthAPI.ResourceWriteResult] {
        let trees = try resources.map { try JSONSerialization.jsonObject(with: ResourceCodec.json($0.value)) }
        let body = try JSONSerialization.data(withJSONObject: ["upsert": upsert, "resources": trees] as [String: Any])
        return try decode(AuthAPI.ResourceBatchResponse.self, try await call(.POST, "resources/batch", body: body)).results
    }

    /// Replaces a resource only if it is still at its `metadata.revision` (Admin): `compareFailed`
    /// when it changed since it was read, `notFound` when it was deleted. Returns the stored
    /// resource with its new revision.
    @discardableResult public func update(_ resource: AnyResource) async throws -> AnyResource {
        let data = try await call(.PUT, "resources", body: try ResourceCodec.json(resource.value))
        return try ResourceCodec.decode(tree: try JSONSerialization.jsonObject(with: data), source: "auth service reply")
    }
}
