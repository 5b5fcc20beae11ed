public import TeleportAPI
import TeleportCrypto

extension TokenService {
    /// Spends a `trusted_cluster` token: checks it like ``validate(_:for:)`` (unknown, expired,
    /// revoked and wrong-type tokens are refused), then deletes a dynamic one, so that a second
    /// exchange with the same value is refused. When two exchanges race, the one whose delete
    /// fails is refused. A static token (`auth_service.tokens`) stays, as the configuration says.
    public func spend(_ value: String, for role: SystemRole) async throws {
        _ = try await validate(value, for: role)
        let hash = SecretHash.hex(value)
        if staticTokens.contains(where: { ConstantTime.equal($0.hash, hash) }) { return }
        do {
            try await store.delete(hash)
        } catch let error as TeleportError where error.code == .notFound {
            throw TeleportError.accessDenied("the join token is not valid (unknown, expired or revoked); ask for a new one with `tctl tokens add`")
        }
    }
}
