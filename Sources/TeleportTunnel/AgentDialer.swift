public import NIOCore
import NIOPosix
public import TeleportAPI
public import TeleportSSH

/// The proxy's one way to reach an agent: "a byte stream to service S of agent A". A node that
/// registered an address is dialled over TCP; a tunnelled node (`spec.use_tunnel`) is reached
/// through a channel of its reverse tunnel. Only registered agents are ever passed in (resolution
/// stays with the proxy's node resolver), and a tunnel channel names a service, never an address.
public protocol AgentDialer: Sendable {
    /// Connects to `service` of `node`; `handler` (carrying `ByteBuffer`s) is in the new channel's
    /// pipeline from the start, so nothing the agent sends first is lost. `loop` is the caller's
    /// loop (a direct TCP dial runs on it; a tunnel channel lives on its tunnel's loop).
    func dial(_ node: ServerNode, service: TunnelService, originator: SocketAddress?, on loop: any EventLoop, with handler: GlueHandler)
        -> EventLoopFuture<any Channel>
}

extension AgentDialer {
    /// Dials `node`'s SSH service and glues it to `sshChannel` (a `direct-tcpip` or `proxy:`
    /// channel of a user's connection); the SSH channel is not read until the agent is reached.
    public func bridge(_ sshChannel: any Channel, to node: ServerNode, originator: SocketAddress?) -> EventLoopFuture<Void> {
        let loop = sshChannel.eventLoop
        return loop.flatSubmit {
            let (sshSide, agentSide) = GlueHandler.matchedPair()
            let sshBound = NIOLoopBound(sshSide, eventLoop: loop)
            return dial(node, service: .nodeSSH, originator: originator, on: loop, with: agentSide).hop(to: loop).flatMapThrowing { agent in
                do {
                    _ = sshChannel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                    try sshChannel.pipeline.syncOperations.addHandlers([SSHChannelDataCodec(), sshBound.value])
                } catch {
                    agent.close(promise: nil)
                    throw error
                }
                sshChannel.read()
            }
        }
    }
}

/// Direct TCP to `spec.addr`, or the node's reverse tunnel when it registered as tunnelled.
public struct NodeDialer: AgentDialer {
    /// The proxy's tunnel server (nil: no tunnels on this proxy).
    public let tunnels: ReverseTunnelServer?

    /// Creates the dialer.
    public init(tunnels: ReverseTunnelServer?) {
        self.tunnels = tunnels
    }

    public func dial(
        _ node: ServerNode, service: TunnelService, originator: SocketAddress?, on loop: any EventLoop, with handler: GlueHandler
    ) -> EventLoopFuture<any Channel> {
        if node.isTunnelled {
            guard let tunnels else {
                return loop.makeFailedFuture(
                    TeleportError.connectionProblem("node \(node.spec.hostname) is reached through a reverse tunnel, and this proxy serves none"))
            }
            let bound = UncheckedHandler(handler)
            return tunnels.openChannel(to: node.name, service: service, originator: originator) { channel in
                try channel.pipeline.syncOperations.addHandler(bound.handler)
            }
        }
        let address: (host: String, port: Int)
        do {
            address = try HostPort.parse(node.spec.addr, defaultPort: 3022, key: "node addr")
        } catch {
            return loop.makeFailedFuture(error)
        }
        return GlueHandler.connect(host: address.host, port: address.port, on: loop, with: handler)
    }
}

/// The glue handler crosses to the tunnel's loop once, before it is added there.
struct UncheckedHandler: @unchecked Sendable {
    let handler: GlueHandler
    init(_ handler: GlueHandler) { self.handler = handler }
}
