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

    /// Root proxy: the leaves that may keep a reverse tunnel, with their host CAs.
    public func leafTunnelAuthorities() async throws -> [AuthAPI.LeafTunnelAuthority] {
        try decode([AuthAPI.LeafTunnelAuthority].self, try await call(.GET, "remoteclusters/tunnelauthorities"))
    }

    /// Root proxy: reports whether it holds `leaf`'s tunnel (`online`) or it just closed (`offline`).
    public func remoteClusterHeartbeat(leaf: String, connection: String) async throws {
        let name = leaf.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? leaf
        _ = try await call(.POST, "remoteclusters/\(name)/heartbeat", body: try ResourceCodec.json(AuthAPI.RemoteClusterHeartbeat(connection: connection)))
    }

    /// Root proxy: the leaf clusters with their tunnel status (`tsh clusters`).
    public func remoteClusterList() async throws -> [RemoteCluster] {
        try decode([RemoteCluster].self, try await call(.GET, "remoteclusters/statuses"))
    }

    /// Leaf proxy: checks a root user's certificate and maps its roles (and, with `record`, makes
    /// this cluster's nodes accept its key with the mapped roles).
    public func admitRootUser(_ request: AuthAPI.RootUserRequest) async throws -> AuthAPI.RootUserAdmission {
        try decode(AuthAPI.RootUserAdmission.self, try await call(.POST, "trustedclusters/rootusers", body: try ResourceCodec.json(request)))
    }

    /// Leaf proxy: the enabled trusts whose roots it keeps a reverse tunnel to.
    public func rootTunnelTargets() async throws -> [AuthAPI.RootTunnelTarget] {
        try decode([AuthAPI.RootTunnelTarget].self, try await call(.GET, "trustedclusters/tunnels"))
    }

    /// Root proxy: this cluster's user and host CAs (public halves), to send to the leaves.
    public func clusterAuthoritiesForLeaves() async throws -> [CertAuthority] {
        try decode([CertAuthority].self, try await call(.GET, "trustedclusters/authorities"))
    }

    /// Leaf proxy: the root's current CAs, as its proxy sent them on the tunnel.
    public func updateRootAuthorities(_ update: AuthAPI.RootAuthoritiesUpdate) async throws -> AuthAPI.RootAuthoritiesUpdated {
        try decode(AuthAPI.RootAuthoritiesUpdated.self, try await call(.POST, "trustedclusters/rootauthorities", body: try ResourceCodec.json(update)))
    }
}
