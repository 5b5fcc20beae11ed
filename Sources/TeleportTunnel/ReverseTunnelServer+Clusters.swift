import Logging
public import NIOCore
import NIOPosix
import NIOSSH
import NIOSSL
import TeleportAPI
import TeleportSSH

/// Trusted clusters (issue 20) on the proxy's tunnel server: besides this cluster's agents, the
/// proxy of a leaf cluster that trusts this one keeps a tunnel here (a "cluster" tunnel). Its
/// certificate is the leaf proxy's host certificate, checked against the leaf's host CA this
/// cluster stored at the trust exchange (``ClusterTunnelTrust``); the tunnel is registered by the
/// leaf's cluster name in ``ReverseTunnelServer/clusters``, never with the agents.
extension ReverseTunnelServer {
    /// The roles of this cluster's agents that keep tunnels.
    static let agentRoles: Set<SystemRole> = [.node, .db, .kube]

    /// Who the verified certificate belongs to (an agent of this cluster, or a leaf's proxy when
    /// trusted clusters are configured); throws `accessDenied` with the reason.
    func identify(_ certificate: NIOSSLCertificate?) throws -> TunnelPeer {
        guard let trust = configuration.clusterTrust else {
            return .agent(hostUUID: try TunnelTLS.hostUUID(of: certificate, roles: Self.agentRoles, clusterName: configuration.clusterName))
        }
        return try trust.identify(certificate, localCluster: configuration.clusterName, agentRoles: Self.agentRoles)
    }

    /// What is asked before the tunnel's SSH login is accepted: the configured check (locks) for
    /// an agent; for a leaf, that it is still trusted (`tctl rm rc/NAME` since the handshake).
    func admission(for peer: TunnelPeer) -> @Sendable (String) async -> String? {
        switch peer {
        case .agent:
            return configuration.admit
        case .cluster(let name, _):
            let trust = configuration.clusterTrust
            return { _ in
                trust?.leafNames.contains(name) == true ? nil : "leaf cluster \(name) is no longer trusted by this cluster"
            }
        }
    }

    /// Registers the tunnel once its login was accepted, in the registry of its kind, and reports it.
    func register(_ peer: TunnelPeer, channel: any Channel, remote: String) -> (NIOLoopBound<NIOSSHHandler>) -> Void {
        let configuration = self.configuration
        let logger = self.logger
        switch peer {
        case .agent(let hostUUID):
            let registry = self.registry
            return { handler in
                registry.add(hostUUID, channel: channel, handler: handler)
                logger.info("reverse tunnel established", metadata: ["tp.host": "\(hostUUID)", "tp.remote": "\(remote)"])
                configuration.onConnected(hostUUID)
                channel.closeFuture.whenComplete { _ in configuration.onDisconnected(hostUUID) }
            }
        case .cluster(let name, let hostUUID):
            let clusters = self.clusters
            return { handler in
                clusters.add(name, channel: channel, handler: handler)
                logger.info(
                    "reverse tunnel of leaf cluster established",
                    metadata: ["tp.cluster": "\(name)", "tp.host": "\(hostUUID)", "tp.remote": "\(remote)"])
                configuration.onClusterConnected(name)
                channel.closeFuture.whenComplete { _ in
                    logger.info("reverse tunnel of leaf cluster closed", metadata: ["tp.cluster": "\(name)", "tp.host": "\(hostUUID)"])
                    configuration.onClusterDisconnected(name)
                }
            }
        }
    }
}

extension ReverseTunnelServer {
    /// Opens a channel to `service` of the proxy of leaf cluster `cluster` over its tunnel (the
    /// root's way into a leaf, issue 20); the channel carries `ByteBuffer`s. Only this side opens
    /// channels on a cluster tunnel: the leaf's are refused (trust is one-way).
    public func openClusterChannel(
        to cluster: String, service: TunnelService, originator: SocketAddress?, handlers: @escaping @Sendable (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        guard let entry = clusters.entry(cluster) else {
            return MultiThreadedEventLoopGroup.singleton.next().makeFailedFuture(
                TeleportError.connectionProblem(
                    "leaf cluster \(cluster) holds no tunnel to this proxy now (is its proxy running and able to reach this one? tsh clusters shows its status)"))
        }
        let loop = entry.channel.eventLoop
        let from = originator ?? (try? SocketAddress(ipAddress: "0.0.0.0", port: 0))
        return loop.flatSubmit {
            guard let from else { return loop.makeFailedFuture(TeleportError.badParameter("no originator address")) }
            let promise = loop.makePromise(of: (any Channel).self)
            let type = SSHChannelType.forwardedTCPIP(.init(listeningHost: service.rawValue, listeningPort: 0, originatorAddress: from))
            entry.handler.value.createChannel(promise, channelType: type) { child, _ in
                child.eventLoop.makeCompletedFuture {
                    _ = child.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                    try child.pipeline.syncOperations.addHandler(SSHChannelDataCodec())
                    try handlers(child)
                }
            }
            return promise.futureResult.flatMapErrorThrowing { error in
                if error is TeleportError { throw error }
                throw TeleportError.connectionProblem("the proxy of leaf cluster \(cluster) refused a tunnel channel: \(error)")
            }
        }
    }
}
