import Foundation
import Hummingbird
import TeleportAPI
import TeleportBackend
import TeleportCrypto
import TeleportServices

extension AuthAPIRoutes {
    /// `POST /v1/presence/kube` (a Kubernetes service: records naming its own host only),
    /// `GET /v1/kube` (the administrator and proxies: every cluster; users: those their roles'
    /// `kubernetes_labels` allow) and `POST /v1/certs/kuberoute` (the proxy, for `tsh kube login`).
    func registerKubeRoutes(on v1: RouterGroup<AuthRequestContext>) {
        v1.post("presence/kube") { request, context in
            await APIResponse.handling(context) {
                let caller = try caller(context)
                guard caller.kind == .system(.kube) || caller.isAdmin else {
                    throw TeleportError.accessDenied("only Kubernetes services send kube_server heartbeats")
                }
                let body = Data(try await request.body.collect(upTo: ResourceCodec.maxDocumentBytes).readableBytesView)
                var kube = try ownHeartbeat(KubeServer.self, body: body, caller: caller, name: \.spec.hostID, what: "Kubernetes service")
                try kube.validate()
                kube.metadata.expires = nil
                kube.metadata.revision = nil
                let expires = auth.clock.now().addingTimeInterval(Presence.nodeTTL)
                try await auth.presence.record(
                    Item(key: KubeServer.storagePrefix + kube.name, value: try ResourceCodec.json(kube), expires: expires))
                return try APIResponse.json(["status": "ok"])
            }
        }
        v1.get("kube") { _, context in
            await APIResponse.handling(context) {
                let caller = try caller(context)
                let all = try await auth.kubeServers()
                switch caller.kind {
                case .system(.admin), .system(.proxy):
                    return try APIResponse.json(all)
                case .user:
                    return try APIResponse.json(try await auth.kubeServers(all, visibleTo: caller.identity.roles))
                default:
                    throw TeleportError.accessDenied("only users, proxies and the administrator list Kubernetes clusters")
                }
            }
        }
        v1.post("certs/kuberoute") { request, context in
            await APIResponse.handling(context) {
                try requireProxy(context)
                let sign = try await body(AuthAPI.KubeRouteCertRequest.self, request)
                var fields: [String: JSONValue] = [
                    "cert_type": "kube_route", "kubernetes_cluster": .string(String(sign.kubeCluster.prefix(256))),
                ]
                do {
                    let (issued, user) = try await auth.issueKubeRouteCertificate(sign)
                    fields["user"] = .string(user)
                    fields["success"] = true
                    try await auth.emit(AuditEventType.certCreate, fields: fields)
                    return try APIResponse.json(issued)
                } catch let error as TeleportError {
                    fields["success"] = false
                    fields["error"] = .string(error.message)
                    try await auth.emit(AuditEventType.certCreateFailure, fields: fields)
                    throw error
                }
            }
        }
    }
}
