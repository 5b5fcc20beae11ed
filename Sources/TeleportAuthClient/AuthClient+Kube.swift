import Foundation
public import TeleportAPI
import NIOHTTP1

extension AuthClient {
    /// `GET /v1/kube`: the registered Kubernetes clusters (all for proxies and the administrator,
    /// those the roles' `kubernetes_labels` allow for users).
    public func kubeServers() async throws -> [KubeServer] {
        try decode([KubeServer].self, try await call(.GET, "kube"))
    }

    /// `POST /v1/presence/kube` (a Kubernetes service): one cluster's heartbeat.
    public func heartbeat(kube: KubeServer) async throws {
        _ = try await call(.POST, "presence/kube", body: try ResourceCodec.json(kube))
    }

    /// `POST /v1/certs/kuberoute` (a proxy, for `tsh kube login`): the user's certificate with a
    /// Kubernetes cluster route.
    public func kubeRouteCertificate(_ request: AuthAPI.KubeRouteCertRequest) async throws -> AuthAPI.DatabaseRouteCertResponse {
        try decode(AuthAPI.DatabaseRouteCertResponse.self, try await call(.POST, "certs/kuberoute", body: try ResourceCodec.json(request)))
    }
}
