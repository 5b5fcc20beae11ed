import Foundation
public import Logging
public import NIOCore
public import TeleportAPI
import TeleportAccess
public import TeleportAuthClient
import TeleportSSH
public import TeleportTunnel

/// Leaf side of trusted clusters (issue 20): what this proxy serves on its reverse tunnel to a root
/// cluster (``TunnelService/clusterProxy``). Every request carries the root user's SSH
/// certificate; this cluster's auth service checks it against the root's user CA and maps its roles
/// (``AuthClient/admitRootUser(_:)``: no mapping, no access, audited there). A listing answers the
/// nodes the mapped roles let the user reach, with their host keys; a dial first makes this
/// cluster's nodes accept the user's key with the mapped roles, then connects to the registered
/// node (directly or through its own tunnel) and pipes the user's SSH bytes: the SSH session is
/// end to end between the user and the node, which checks the key and the roles as for a local
/// user and records the session here.
public struct LeafClusterService: Sendable {
    let auth: AuthClient
    let clusterName: String
    let resolver: NodeResolver
    let dialer: any AgentDialer
    let roles: @Sendable ([String]) -> [Role]
    let logger: Logger
    let cache = NodeListCache()
    /// The root clusters' proxies, as they sent them: the tunnel agents keep a tunnel to each.
    public let rootProxies = RootProxyDirectory()

    /// Creates the service of the leaf `clusterName`; `roles` gives this cluster's roles by name
    /// (the proxy's certificate cache has them).
    public init(
        auth: AuthClient, clusterName: String, dialer: any AgentDialer, roles: @escaping @Sendable ([String]) -> [Role], logger: Logger
    ) {
        self.auth = auth
        self.clusterName = clusterName
        self.resolver = NodeResolver(auth: auth, clusterName: clusterName)
        self.dialer = dialer
        self.roles = roles
        self.logger = logger
    }

    /// The tunnel service handler for the tunnel to root cluster `root`.
    public func handler(root: String) -> ReverseTunnelAgent.ServiceHandler {
        let service = self
        return { channel, originator in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(LeafClusterRequestHandler(service: service, root: root, originator: originator))
            }
        }
    }

    /// What a request leads to.
    enum Outcome {
        case answer(String)
        case dial(ServerNode)
    }

    /// Answers a root proxy's request (refusals are thrown).
    func handle(_ request: ClusterWire.Request, root: String) async throws -> Outcome {
        switch request.op {
        case ClusterWire.Request.nodes:
            let admission = try await auth.admitRootUser(.init(cluster: root, certificate: request.certificate, record: false))
            let listing = try await listing(for: admission)
            let json = String(decoding: try ResourceCodec.json(listing), as: UTF8.self)
            return .answer("OK " + json + "\n")
        case ClusterWire.Request.sessions:
            let admission = try await auth.admitRootUser(.init(cluster: root, certificate: request.certificate, record: false))
            let checker = AccessChecker(roles: roles(admission.roles), traits: AccessChecker.templateTraits(admission.traits))
            let sessions = try await ActiveSessionsList.visible(auth: auth, user: admission.user, checker: checker)
            return .answer("OK " + String(decoding: try ResourceCodec.json(sessions), as: UTF8.self) + "\n")
        case ClusterWire.Request.recordings:
            let admission = try await auth.admitRootUser(.init(cluster: root, certificate: request.certificate, record: false))
            let list = try await auth.recordings(forUser: admission.user, roles: admission.roles)
            return .answer("OK " + String(decoding: try ResourceCodec.json(list), as: UTF8.self) + "\n")
        case ClusterWire.Request.recording:
            guard let sid = request.target, !sid.isEmpty else { throw TeleportError.badParameter("a recording request names no session") }
            let admission = try await auth.admitRootUser(.init(cluster: root, certificate: request.certificate, record: false))
            // The leaf's auth service decides (and audits) with the mapped roles, on the user's behalf.
            let data = try await auth.recording(sessionID: sid, forUser: admission.user, roles: admission.roles)
            return .answer("OK " + data.base64EncodedString() + "\n")
        case ClusterWire.Request.dial:
            guard let target = request.target else { throw TeleportError.badParameter("a dial names no node") }
            let parsed = try ProxyTarget.parse(target)
            guard parsed.cluster == nil || parsed.cluster == clusterName else {
                throw TeleportError.badParameter("this is cluster \(clusterName), not \(parsed.cluster ?? "")")
            }
            let admission = try await auth.admitRootUser(.init(cluster: root, certificate: request.certificate, record: true))
            let node = try await resolver.resolve(host: parsed.host, port: parsed.port)
            logger.info(
                "proxying a root cluster's user to a node", metadata: ["tp.user": "\(admission.user)", "tp.cluster": "\(root)", "tp.node": "\(node.name)"])
            return .dial(node)
        case ClusterWire.Request.authorities:
            // The root's proxy (this tunnel's other end, checked against the root's host CA when
            // it was dialed) sends the root's current CAs: a rotation there is followed here;
            // and its proxies, for the tunnel agent's pool.
            if let proxies = request.proxies { rootProxies.set(root: root, proxies: proxies) }
            let updated = try await auth.updateRootAuthorities(.init(cluster: root, certAuthorities: request.authorities ?? []))
            return .answer("OK " + updated.updated.joined(separator: ",") + "\n")
        default:
            throw TeleportError.badParameter("unknown request \(request.op.debugDescription)")
        }
    }

    /// The nodes the mapped roles reach (with any of the user's logins here), and their host keys.
    func listing(for admission: AuthAPI.RootUserAdmission) async throws -> ClusterWire.Listing {
        let checker = AccessChecker(roles: roles(admission.roles), traits: AccessChecker.templateTraits(admission.traits))
        let reach = NodeReachability(checker: checker, logins: admission.logins)
        let nodes = try await cache.sorted(auth: auth, by: .name).filter { reach.allows(labels: $0.labels) }.map(\.node)
        let ids = Set(nodes.map(\.name))
        let names = Set(nodes.map(\.spec.hostname))
        let keys = try await auth.hostKeys().filter { ids.contains($0.hostID) || names.contains($0.nodeName) }
        let reachAs = admission.logins.map { (login: $0, reach: NodeReachability(checker: checker, logins: [$0])) }
        var logins: [String: [String]] = [:]
        for node in nodes {
            let labels = node.allLabels
            logins[node.name] = reachAs.filter { $0.reach.allows(labels: labels) }.map(\.login)
        }
        return ClusterWire.Listing(nodes: nodes, hostKeys: keys, logins: logins)
    }
}

/// Reads the root proxy's request line, answers it, and for a dial glues the channel to the node.
final class LeafClusterRequestHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum State { case line, working, connected, done }

    let service: LeafClusterService
    let root: String
    let originator: SocketAddress?
    private var state = State.line
    private var buffer = ByteBuffer()
    private var held: [ByteBuffer] = []

    init(service: LeafClusterService, root: String, originator: SocketAddress?) {
        self.service = service
        self.root = root
        self.originator = originator
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: ClusterWire.lineTimeout) {
            if self.state == .line { self.refuse(bound.value, "no request in time") }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .connected:
            context.fireChannelRead(data)
        case .working:
            held.append(unwrapInboundIn(data))
        case .done:
            return
        case .line:
            var bytes = unwrapInboundIn(data)
            buffer.writeBuffer(&bytes)
            guard let line = ClusterWire.takeLine(&buffer) else {
                if buffer.readableBytes > ClusterWire.maxRequest { refuse(context, "the request is too long") }
                return
            }
            if buffer.readableBytes > 0, let rest = buffer.readSlice(length: buffer.readableBytes) { held.append(rest) }
            let request: ClusterWire.Request
            do {
                request = try JSONDecoder().decode(ClusterWire.Request.self, from: Data(line.utf8))
            } catch {
                return refuse(context, "the request cannot be read")
            }
            work(context, request)
        }
    }

    private func work(_ context: ChannelHandlerContext, _ request: ClusterWire.Request) {
        state = .working
        let service = self.service
        let root = self.root
        let loop = context.eventLoop
        let bound = NIOLoopBound(context, eventLoop: loop)
        let promise = loop.makePromise(of: LeafClusterService.Outcome.self)
        promise.completeWithTask { try await service.handle(request, root: root) }
        let (tunnelSide, nodeSide) = GlueHandler.matchedPair()
        let nodeBound = NIOLoopBound(nodeSide, eventLoop: loop)
        let tunnelBound = NIOLoopBound(tunnelSide, eventLoop: loop)
        let originator = self.originator
        promise.futureResult.flatMap { outcome -> EventLoopFuture<(any Channel)?> in
            switch outcome {
            case .answer(let text):
                bound.value.writeAndFlush(self.wrapOutboundOut(bound.value.channel.allocator.buffer(string: text))).whenComplete { _ in
                    self.state = .done
                    bound.value.close(promise: nil)
                }
                return loop.makeSucceededFuture(nil)
            case .dial(let node):
                return service.dialer.dial(node, service: .nodeSSH, originator: originator, on: loop, with: nodeBound.value).hop(to: loop).map { Optional($0) }
            }
        }.whenComplete { result in
            let context = bound.value
            switch result {
            case .failure(let error):
                let text = (error as? TeleportError)?.message ?? "\(error)"
                service.logger.info("refused a root cluster's request: \(text)", metadata: ["tp.cluster": "\(root)"])
                self.refuse(context, text)
            case .success(nil):
                return
            case .success(let node?):
                self.connected(context, node: node, glue: tunnelBound.value)
            }
        }
    }

    private func connected(_ context: ChannelHandlerContext, node: any Channel, glue: GlueHandler) {
        state = .connected
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: "OK\n")), promise: nil)
        do {
            try context.pipeline.syncOperations.addHandler(glue, position: .after(self))
        } catch {
            node.close(promise: nil)
            context.close(promise: nil)
            return
        }
        let pending = held
        held.removeAll()
        for bytes in pending { context.fireChannelRead(wrapInboundOut(bytes)) }
        if !pending.isEmpty { context.fireChannelReadComplete() }
        context.read()
    }

    private func refuse(_ context: ChannelHandlerContext, _ reason: String) {
        state = .done
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: ClusterWire.error(reason)))).whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
