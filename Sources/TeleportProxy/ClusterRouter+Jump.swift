import Foundation
public import NIOCore
public import TeleportAPI
public import TeleportSSH
import TeleportAuthClient
import TeleportTunnel

/// `ssh -J PROXY` to a leaf cluster's node (trusted clusters, issue 20). OpenSSH's jump sends a
/// `direct-tcpip` channel for `HOST:PORT`; a host named `NODE.LEAF` (the form `tsh config` writes
/// for leaf nodes, as for the root's own `NODE.ROOT`) or `NODE@LEAF` goes through the leaf's
/// tunnel, as the `proxy:%h:%p@LEAF` subsystem does: the leaf maps the user's roles and pipes the
/// bytes to its node, so the SSH session is end to end with the leaf's node.
extension ClusterRouter {
    /// The leaf target a `direct-tcpip` host names: `NODE.LEAF` for a leaf this cluster trusts
    /// (the longest such suffix), else `target` unchanged (a root node, or an explicit `@CLUSTER`).
    /// A leaf's name wins over a root node whose host name happens to end with it.
    public func jumpTarget(_ target: ProxyTarget) async -> ProxyTarget {
        guard target.cluster == nil, Self.mayNameLeaf(target.host) else { return target }
        guard let leaves = try? await auth.remoteClusterList().map(\.name) else { return target }
        return Self.jumpTarget(target, leaves: leaves, localCluster: clusterName)
    }

    /// Whether a host could end with a cluster name (a dotted name, not an IP address): other
    /// hosts never cost a lookup of the leaf clusters.
    static func mayNameLeaf(_ host: String) -> Bool {
        host.contains(".") && !host.contains(":") && !host.allSatisfy { $0.isNumber || $0 == "." }
    }

    /// The pure rule of ``jumpTarget(_:)``: `NODE.LEAF` with LEAF one of `leaves` (compared
    /// without case; the longest matching name) becomes `NODE` in LEAF; this cluster's own name
    /// and everything else stay as they are.
    public static func jumpTarget(_ target: ProxyTarget, leaves: [String], localCluster: String) -> ProxyTarget {
        guard target.cluster == nil else { return target }
        let host = target.host.lowercased()
        let local = localCluster.lowercased()
        let matching = leaves.filter { leaf in
            let name = leaf.lowercased()
            return name != local && !name.isEmpty && host.count > name.count + 1 && host.hasSuffix("." + name)
        }
        guard let leaf = matching.max(by: { $0.count < $1.count }) else { return target }
        let node = String(target.host.dropLast(leaf.count + 1))
        return ProxyTarget(host: node, port: target.port, cluster: leaf)
    }

    /// Glues `sshChannel` (a user's `direct-tcpip` channel) to the node `target` names in its leaf
    /// cluster; the SSH channel is not read until the leaf answered `OK`.
    public func bridge(
        _ sshChannel: any Channel, to target: ProxyTarget, user: SSHAuthenticatedUser, originator: SocketAddress?
    ) -> EventLoopFuture<Void> {
        let loop = sshChannel.eventLoop
        return loop.flatSubmit {
            let (sshSide, tunnelSide) = GlueHandler.matchedPair()
            let sshBound = NIOLoopBound(sshSide, eventLoop: loop)
            return dial(target, user: user, originator: originator, on: loop, with: tunnelSide).hop(to: loop).flatMapThrowing { tunnel in
                do {
                    _ = sshChannel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                    try sshChannel.pipeline.syncOperations.addHandlers([SSHChannelDataCodec(), sshBound.value])
                } catch {
                    tunnel.close(promise: nil)
                    throw error
                }
                sshChannel.read()
            }
        }
    }
}
