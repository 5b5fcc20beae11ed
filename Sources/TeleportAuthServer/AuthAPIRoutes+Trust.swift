import Foundation
import Hummingbird
import TeleportAPI
import TeleportCrypto
import TeleportServices

/// Trusted clusters (issue 20).
///
/// | route | who | what |
/// | --- | --- | --- |
/// | `POST /v1/trustedclusters/validate` | Proxy (for a leaf calling its web port) | root side of a trust exchange: a `trusted_cluster` token and the leaf's CAs in, this cluster's CAs sealed with the token out; audited as `trusted_cluster.create` (refusals T7000W) |
/// | `GET /v1/remoteclusters/tunnelauthorities` | Proxy | root side: the leaves that may keep a reverse tunnel, with their host CAs |
/// | `POST /v1/remoteclusters/:name/heartbeat` | Proxy | root side: `{connection: online\|offline}` of a leaf's tunnel, kept in the `remote_cluster`'s status (never creates one) |
/// | `GET /v1/remoteclusters/statuses` | Proxy | root side: the `remote_cluster` records (`tsh clusters` through `GET /webapi/sites`) |
/// | `GET /v1/trustedclusters/tunnels` | Proxy | leaf side: the enabled trusts, each with the root's host CA and addresses |
/// | `POST /v1/trustedclusters/rootusers` | Proxy | leaf side: a root user's certificate checked against the root's user CA and mapped with `role_map`; with `record`, a certificate of this cluster with the mapped roles is recorded for the key; refusals audited as `trusted_cluster.user.denied` |
/// | `GET /v1/trustedclusters/authorities` | Proxy | root side: this cluster's user and host CAs (public halves, both keys during a rotation), which the proxies send to the leaves |
/// | `POST /v1/trustedclusters/rootauthorities` | Proxy | leaf side: the root's current CAs as its proxy sent them on the tunnel; replaces the held ones (a root rotation), audited as `trusted_cluster.authorities.update` |
/// | `GET /v1/authorities` | Admin; users whose roles allow `list` on `cert_authority` | `tctl auth ls`: local and trusted CAs' fingerprints |
///
/// `tctl create [-f]` of `kind: trusted_cluster` (leaf side) and `tctl rm tc/NAME`, `tctl rm
/// rc/NAME` go through the resource routes, which hand those kinds to ``trustWrite(_:upsert:context:)``
/// and ``trustDelete(kind:name:context:)``.
extension AuthAPIRoutes {
    func registerTrustRoutes(on v1: RouterGroup<AuthRequestContext>) {
        v1.post("trustedclusters/validate") { request, context in
            await APIResponse.handling(context) {
                guard case .system(.proxy) = try caller(context).kind else {
                    throw TeleportError.accessDenied("only the cluster's proxies pass trust requests on")
                }
                let validate = try await body(AuthAPI.ValidateTrustRequest.self, request)
                return try APIResponse.json(try await auth.validateTrust(validate))
            }
        }
        // Step 2: the tunnels between the clusters' proxies.
        v1.get("remoteclusters/tunnelauthorities") { _, context in
            await APIResponse.handling(context) {
                try requireProxy(context, "the leaf clusters' tunnel CAs")
                return try APIResponse.json(try await auth.leafTunnelAuthorities())
            }
        }
        v1.post("remoteclusters/:name/heartbeat") { request, context in
            await APIResponse.handling(context) {
                try requireProxy(context, "leaf cluster heartbeats")
                let heartbeat = try await body(AuthAPI.RemoteClusterHeartbeat.self, request)
                try await auth.recordRemoteClusterHeartbeat(leaf: context.parameters.get("name") ?? "", connection: heartbeat.connection)
                return try APIResponse.json(["status": "ok"])
            }
        }
        v1.get("remoteclusters/statuses") { _, context in
            await APIResponse.handling(context) {
                try requireProxy(context, "the leaf clusters' status")
                return try APIResponse.json(try await auth.remoteClusters.list())
            }
        }
        v1.get("trustedclusters/tunnels") { _, context in
            await APIResponse.handling(context) {
                try requireProxy(context, "the root clusters' tunnel targets")
                return try APIResponse.json(try await auth.rootTunnelTargets())
            }
        }
        // Step 3: a root user's certificate, passed on by this (leaf) cluster's proxy.
        v1.post("trustedclusters/rootusers") { request, context in
            await APIResponse.handling(context) {
                try requireProxy(context, "root users' certificates")
                let admit = try await body(AuthAPI.RootUserRequest.self, request)
                return try APIResponse.json(try await auth.admitRootUser(admit))
            }
        }
        // Following the root's CA rotations.
        v1.get("trustedclusters/authorities") { _, context in
            await APIResponse.handling(context) {
                try requireProxy(context, "this cluster's CAs for its leaves")
                return try APIResponse.json(try await auth.exchangeableAuthorities())
            }
        }
        v1.post("trustedclusters/rootauthorities") { request, context in
            await APIResponse.handling(context) {
                try requireProxy(context, "the root clusters' CAs")
                let update = try await body(AuthAPI.RootAuthoritiesUpdate.self, request)
                return try APIResponse.json(try await auth.updateRootAuthorities(update))
            }
        }
        v1.get("authorities") { _, context in
            await APIResponse.handling(context) {
                try await authorize(context, kind: CertAuthority.kind, verb: "list")
                return try APIResponse.json(try await auth.authorityListing())
            }
        }
    }

    /// Refuses every caller but the cluster's proxies.
    func requireProxy(_ context: AuthRequestContext, _ what: String) throws {
        guard case .system(.proxy) = try caller(context).kind else {
            throw TeleportError.accessDenied("only the cluster's proxies may read or report \(what)")
        }
    }

    /// Writes `trusted_cluster` resources (each establishing its trust) and refuses to write
    /// `remote_cluster` ones; nil when `resources` holds neither (the caller writes them).
    func trustWrite(_ resources: [AnyResource], upsert: Bool, context: AuthRequestContext) async throws -> [AuthAPI.ResourceWriteResult]? {
        let kinds = Set(resources.map(\.kind))
        if kinds.contains(RemoteCluster.kind) {
            // Only the labels of an existing record may be set (tctl create -f): they decide which
            // users see and reach the leaf (roles' cluster_labels).
            guard kinds.count == 1, upsert else {
                throw TeleportError.badParameter(
                    "remote_cluster records are written by this cluster when a leaf establishes trust; create a trusted_cluster on the leaf "
                        + "instead (tctl create -f of an existing remote_cluster sets its metadata.labels, in a file of its own)")
            }
            var results: [AuthAPI.ResourceWriteResult] = []
            for resource in resources {
                guard let wanted = resource.value as? RemoteCluster else { continue }
                var record: RemoteCluster
                do {
                    record = try await auth.remoteClusters.get(wanted.name)
                } catch let error as TeleportError where error.code == .notFound {
                    throw TeleportError.notFound(
                        "no leaf cluster \(wanted.name) trusts this cluster (tctl get rc lists them); a remote_cluster is written when a leaf establishes trust")
                }
                record.metadata.labels = wanted.metadata.labels
                try await auth.remoteClusters.update(record)
                results.append(.init(kind: RemoteCluster.kind, name: wanted.name, created: false))
            }
            return results
        }
        guard kinds.contains(TrustedCluster.kind) else { return nil }
        guard kinds.count == 1 else {
            throw TeleportError.badParameter("put trusted_cluster resources in a file of their own: each one contacts its root cluster; nothing was written")
        }
        let user = try caller(context).identity.username
        var results: [AuthAPI.ResourceWriteResult] = []
        for resource in resources {
            guard let trusted = resource.value as? TrustedCluster else { continue }
            let existed = (try? await auth.trustedClusters.get(trusted.name)) != nil
            _ = try await auth.putTrustedCluster(trusted, upsert: upsert, by: user)
            results.append(.init(kind: TrustedCluster.kind, name: trusted.name, created: !existed))
        }
        return results
    }

    /// Deletes a `trusted_cluster` (leaf) or `remote_cluster` (root) with its CAs; false for other kinds.
    func trustDelete(kind: String, name: String, context: AuthRequestContext) async throws -> Bool {
        let user = try caller(context).identity.username
        switch kind {
        case TrustedCluster.kind: try await auth.removeTrustedCluster(name, by: user)
        case RemoteCluster.kind: try await auth.removeRemoteCluster(name, by: user)
        default: return false
        }
        return true
    }
}
