public import Foundation
import NIOHTTP1
public import TeleportAPI

extension AuthClient {
    /// The root proxy passes a leaf's trust request to its auth service (`POST /v1/trustedclusters/validate`).
    public func validateTrust(_ request: AuthAPI.ValidateTrustRequest) async throws -> AuthAPI.ValidateTrustResponse {
        try decode(AuthAPI.ValidateTrustResponse.self, try await call(.POST, "trustedclusters/validate", body: try ResourceCodec.json(request)))
    }

    /// `tctl auth ls`: this cluster's CAs and the trusted clusters' CAs.
    public func authorities() async throws -> AuthAPI.AuthoritiesResponse {
        try decode(AuthAPI.AuthoritiesResponse.self, try await call(.GET, "authorities"))
    }
}
