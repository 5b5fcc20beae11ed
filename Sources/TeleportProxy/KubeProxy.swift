import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization
import TeleportAccess
import TeleportAPI
import TeleportAuthClient
import TeleportCrypto
import TeleportSSH
import TeleportTunnel
import X509

/// Kubernetes access at the proxy's web port: a TLS connection whose server name starts with
/// ``AuthAPI/kubeProxyServerNamePrefix`` (kubectl's `tls-server-name`), or that offers ALPN
/// ``AuthAPI/kubeALPNProtocol``, is terminated with the proxy's host certificate (which carries
/// ``AuthAPI/kubeProxyServerName``; kubeconfigs trust the host CA), asking for the user's
/// certificate (the user CA only). Once the handshake is done the proxy checks, before any
/// request is read: a user certificate of this cluster with a Kubernetes cluster route, the
/// cluster registered, its labels allowed by the roles' `kubernetes_labels`. Then it dials the
/// cluster's Kubernetes service (its address, or its reverse tunnel) with mutual TLS (the `Kube`
/// identity of the record's host), sends the hand-off and relays the bytes both ways. A refusal
/// is a Kubernetes `Status` answer (401/403/502) with one line naming the cause, and a
/// `kube.request` failure event from the proxy.
final class KubeProxy: Sendable {
    let auth: AuthClient
    let clusterName: String
    /// The proxy's identity towards Kubernetes services.
    let serviceContexts: TLSContextSource
    /// The context for the next connection to a service.
    var serviceContext: NIOSSLContext { serviceContexts.current }
    let roles: @Sendable ([String]) -> [Role]
    let audit: SSHAudit?
    let tunnels: ReverseTunnelServer?
    let logger: Logger
    /// The registered clusters, and when they were listed.
    private let cache = Mutex<(loaded: NIODeadline, clusters: [KubeServer])>((.distantPast, []))

    init(
        auth: AuthClient, clusterName: String, identity: ClientIdentity, roles: @escaping @Sendable ([String]) -> [Role], audit: SSHAudit?,
        tunnels: ReverseTunnelServer?, logger: Logger
    ) throws {
        self.auth = auth
        self.clusterName = clusterName
        self.roles = roles
        self.audit = audit
        self.tunnels = tunnels
        self.logger = logger
        serviceContexts = TLSContextSource(try Self.serviceContext(identity: identity))
    }

    /// Presents `identity` to the services and trusts its CAs from the next connection on.
    func renew(identity: ClientIdentity) throws {
        serviceContexts.set(try Self.serviceContext(identity: identity))
    }

    /// The client context of the proxy's `identity` towards the services.
    static func serviceContext(identity: ClientIdentity) throws -> NIOSSLContext {
        do {
            let chain = try NIOSSLCertificate.fromPEMBytes(Array(identity.certificatePEM.utf8)).map { NIOSSLCertificateSource.certificate($0) }
            var client = TLSConfiguration.makeClientConfiguration()
            client.certificateChain = chain
            client.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(identity.keyPEM.utf8), format: .pem))
            client.trustRoots = .certificates(try identity.trustedCAPEMs.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) })
            client.certificateVerification = .noHostnameVerification
            client.minimumTLSVersion = .tlsv12
            return try NIOSSLContext(configuration: client)
        } catch {
            throw TeleportError.badParameter("the proxy's identity cannot be loaded for Kubernetes access (data_dir/keys/proxy.*): \(error)")
        }
    }

    /// The TLS context kubectl meets: the proxy's host certificate, the user CA's certificates
    /// as the only roots, a client certificate asked for (its absence is answered with a 401),
    /// HTTP/2 (``KubeHTTP2``) or HTTP/1.1 by ALPN.
    static func frontContext(identity: ClientIdentity, userCAs: [String]) throws -> NIOSSLContext {
        do {
            var tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(identity.certificatePEM.utf8)).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(identity.keyPEM.utf8), format: .pem)))
            tls.trustRoots = .certificates(try userCAs.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) })
            tls.certificateVerification = .optionalVerification
            tls.minimumTLSVersion = .tlsv12
            tls.applicationProtocols = ["h2", "http/1.1"]
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw TeleportError.badParameter("the proxy's identity cannot be loaded for Kubernetes access (data_dir/keys/proxy.*): \(error)")
        }
    }

    /// The registered clusters, listed at most every 2 s (`maxAge`).
    func clusters(maxAge: TimeAmount = .seconds(2)) async throws -> [KubeServer] {
        let now = NIODeadline.now()
        let cached = cache.withLock { $0 }
        if now - cached.loaded < maxAge { return cached.clusters }
        let clusters = try await auth.kubeServers()
        cache.withLock { $0 = (now, clusters) }
        return clusters
    }

    /// Takes the connection after the route chose TLS: a gate holds the request bytes until
    /// the checks are done.
    func takeOver(_ channel: any Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(KubeFrontGate(proxy: self))
        }
    }

    /// What to do with a connection.
    enum Decision {
        /// HTTP/1.1: the bytes go both ways to this connection to the service.
        case relay(any Channel)
        /// HTTP/2: each stream gets its own connection to the service.
        case multiplex(KubeServiceDialer)
        case refuse(Int, String)
    }

    /// The checks, then (HTTP/1.1, `multiplexed` false) the dial to the Kubernetes service and
    /// the hand-off.
    func decide(channel: any Channel, multiplexed: Bool) async -> Decision {
        var fields: [String: JSONValue] = ["addr.remote": .string(channel.remoteAddress.map { "\($0)" } ?? ""), "success": false]
        func refuse(_ code: Int, _ message: String) -> Decision {
            fields["error"] = .string(message)
            fields["response_code"] = .int(code)
            audit?.add(AuditEventType.kubeRequestFailure, fields)
            logger.info("Kubernetes connection refused: \(message)")
            return .refuse(code, message)
        }
        let peer: NIOSSLCertificate?
        do {
            peer = try await channel.nioSSL_peerCertificate().get()
        } catch {
            return .refuse(400, "the TLS handshake did not complete")
        }
        guard let peer else {
            return refuse(401, "no client certificate: log in with tsh login, then tsh kube login CLUSTER")
        }
        let pem: String
        let identity: X509Identity
        do {
            let certificate = try Certificate.fromDER(try peer.toDERBytes())
            pem = try certificate.pemText()
            identity = try X509Identity(certificate: certificate)
        } catch {
            return refuse(403, "the client certificate cannot be read")
        }
        fields["user"] = .string(identity.username)
        guard identity.clusterName == clusterName, identity.systemRole == nil else {
            return refuse(403, "the client certificate is not a user certificate of this cluster")
        }
        guard let route = identity.kubernetesCluster else {
            return refuse(403, "the certificate carries no Kubernetes cluster route: run tsh kube login CLUSTER")
        }
        fields["kubernetes_cluster"] = .string(route)
        let clusters: [KubeServer]
        do {
            clusters = try await self.clusters()
        } catch {
            return refuse(502, "cannot list the cluster's Kubernetes clusters: \((error as? TeleportError)?.message ?? "\(error)")")
        }
        let found = clusters.first { $0.name == route }
        let fresh = found == nil ? (try? await self.clusters(maxAge: .milliseconds(200))) ?? clusters : clusters
        guard let cluster = found ?? fresh.first(where: { $0.name == route }) else {
            return refuse(403, "Kubernetes cluster \(route) is not registered (tsh kube ls lists them)")
        }
        let checker = AccessChecker(roles: roles(identity.roles), traits: AccessChecker.templateTraits(identity.traits ?? ["logins": identity.logins]))
        guard let decision = try? checker.checkKubeLabels(cluster.allLabels), decision.allowed else {
            let reasons = (try? checker.checkKubeLabels(cluster.allLabels).reasons.joined(separator: "; ")) ?? "the role check failed"
            return refuse(403, "access to Kubernetes cluster \(route) denied: \(reasons)")
        }
        let handoff = DatabaseHandoff(
            userCertificatePEM: pem, clientAddress: channel.remoteAddress.map { "\($0)" } ?? "", parameters: [["kube_cluster", route]])
        let dialer = KubeServiceDialer(proxy: self, cluster: cluster, handoff: handoff, fields: fields)
        if multiplexed { return .multiplex(dialer) }
        do {
            return .relay(try await dialer.dial(on: channel.eventLoop))
        } catch {
            return refuse(502, "cannot reach Kubernetes cluster \(route)'s Kubernetes service: \((error as? TeleportError)?.message ?? "\(error)")")
        }
    }

    /// Mutual TLS to the Kubernetes service of `cluster` (TCP to `spec.addr`, or a `kube` channel
    /// of its reverse tunnel); its certificate must be the `Kube` identity of the record's host.
    func dialService(_ cluster: KubeServer, on loop: any EventLoop) async throws -> any Channel {
        let hostID = cluster.spec.hostID
        let handshake = loop.makePromise(of: Void.self)
        let context = serviceContext
        let channel: any Channel
        if cluster.spec.useTunnel == true {
            guard let tunnels else {
                handshake.fail(TeleportError.connectionProblem("no tunnel server"))
                throw TeleportError.connectionProblem("cluster \(cluster.name) is reached through a reverse tunnel, and this proxy serves none")
            }
            do {
                channel = try await tunnels.openChannel(to: hostID, service: .kube, originator: nil) { channel in
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHandler(TLSHandshakeWatcher(done: handshake))
                }.get()
            } catch {
                handshake.fail(error)
                throw TeleportError.connectionProblem(
                    "its reverse tunnel is not connected: \((error as? TeleportError)?.message ?? "\(error)")")
            }
        } else {
            guard let addr = cluster.spec.addr, !addr.isEmpty, let target = try? HostPort.parse(addr, defaultPort: 3027, key: "spec.addr") else {
                handshake.fail(TeleportError.connectionProblem("no address"))
                throw TeleportError.connectionProblem("cluster \(cluster.name) has no Kubernetes service address")
            }
            do {
                channel = try await ClientBootstrap(group: loop)
                    .connectTimeout(.seconds(10))
                    .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                            try channel.pipeline.syncOperations.addHandler(TLSHandshakeWatcher(done: handshake))
                        }
                    }
                    .connect(host: target.host, port: target.port).get()
            } catch {
                handshake.fail(error)
                throw TeleportError.connectionProblem("cannot connect to \(HostPort.join(target.host, target.port)): \(error)")
            }
        }
        do {
            try await handshake.futureResult.get()
            guard let peer = try await channel.nioSSL_peerCertificate().get() else {
                throw TeleportError.accessDenied("the Kubernetes service presented no certificate")
            }
            let identity = try X509Identity(certificate: try Certificate.fromDER(try peer.toDERBytes()))
            guard identity.clusterName == clusterName, identity.systemRole == .kube, identity.username == "\(hostID).\(clusterName)" else {
                throw TeleportError.accessDenied("the Kubernetes service's certificate is not the Kube identity of host \(hostID)")
            }
        } catch {
            channel.close(promise: nil)
            if let error = error as? TeleportError { throw error }
            throw TeleportError.connectionProblem("the TLS handshake with the Kubernetes service failed: \(error)")
        }
        return channel
    }
}

/// After TLS on a Kubernetes connection: holds the client's bytes (at most 1 MiB) until the
/// TLS handshake is done and ``KubeProxy`` decided; then glues the connection to the Kubernetes
/// service, or answers with the refusal and closes.
final class KubeFrontGate: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer
    static let maxHeldBytes = 1 << 20

    private var released = false
    /// ALPN chose HTTP/2.
    private var multiplexed = false
    private var held: [ByteBuffer] = []
    private var heldCount = 0
    let proxy: KubeProxy

    init(proxy: KubeProxy) { self.proxy = proxy }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !released else {
            context.fireChannelRead(data)
            return
        }
        let buffer = unwrapInboundIn(data)
        heldCount += buffer.readableBytes
        guard heldCount <= Self.maxHeldBytes else {
            context.close(promise: nil)
            return
        }
        held.append(buffer)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted(let negotiated) = event {
            let multiplexed = negotiated == "h2"
            self.multiplexed = multiplexed
            let channel = context.channel
            let proxy = self.proxy
            let gate = NIOLoopBound(self, eventLoop: context.eventLoop)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            Task {
                let decision = await proxy.decide(channel: channel, multiplexed: multiplexed)
                channel.eventLoop.execute {
                    gate.value.apply(decision, context: bound.value)
                }
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Installs the relay, or answers the refusal (on the loop).
    func apply(_ decision: KubeProxy.Decision, context: ChannelHandlerContext) {
        if multiplexed {
            switch decision {
            case .multiplex(let dialer): multiplex(.relay(dialer), context: context)
            case .refuse(let code, let message): multiplex(.refuse(code, message), context: context)
            case .relay(let upstream):
                upstream.close(promise: nil)
                context.close(promise: nil)
            }
            return
        }
        switch decision {
        case .multiplex:
            context.close(promise: nil)
        case .relay(let upstream):
            let (clientSide, upstreamSide) = GlueHandler.matchedPair()
            guard upstream.eventLoop.inEventLoop else {
                // A tunnel channel lives on its tunnel's loop: its half is added there, then ours here.
                let gate = NIOLoopBound(self, eventLoop: context.eventLoop)
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                upstream.pipeline.addHandler(upstreamSide).hop(to: context.eventLoop).whenComplete { result in
                    switch result {
                    case .success: gate.value.glue(clientSide, upstream: upstream, context: bound.value)
                    case .failure:
                        upstream.close(promise: nil)
                        bound.value.close(promise: nil)
                    }
                }
                return
            }
            do {
                try upstream.pipeline.syncOperations.addHandler(upstreamSide)
            } catch {
                upstream.close(promise: nil)
                context.close(promise: nil)
                return
            }
            glue(clientSide, upstream: upstream, context: context)
        case .refuse(let code, let message):
            // The first request head is read, then answered with the Status and the connection closed.
            do {
                try context.pipeline.syncOperations.addHandlers(
                    [ByteToMessageHandler(HTTPRequestDecoder()), KubeRefusal(code: code, message: message)], position: .after(self))
            } catch {
                context.close(promise: nil)
                return
            }
            releaseHeld(context: context)
        }
    }

    /// Passes the held bytes on and reads again: the gate lets everything through from now on.
    func releaseHeld(context: ChannelHandlerContext) {
        released = true
        for buffer in held { context.fireChannelRead(NIOAny(buffer)) }
        held = []
        heldCount = 0
        context.fireChannelReadComplete()
        context.read()
    }

    /// HTTP/2: adds the HTTP/2 handler after the gate, serves its streams, and releases the held
    /// bytes (the client's preface and first frames) into it (on the loop).
    func multiplex(_ outcome: KubeHTTP2.Outcome, context: ChannelHandlerContext) {
        let multiplexer: KubeHTTP2.Multiplexer
        do {
            multiplexer = try KubeHTTP2.install(on: context.pipeline.syncOperations)
        } catch {
            context.close(promise: nil)
            return
        }
        let logger = proxy.logger
        Task { await KubeHTTP2.serve(multiplexer, outcome: outcome, logger: logger) }
        releaseHeld(context: context)
    }

    /// Adds our half of the glue and releases the held bytes into it (on the loop).
    func glue(_ clientSide: GlueHandler, upstream: any Channel, context: ChannelHandlerContext) {
        do {
            try context.pipeline.syncOperations.addHandler(clientSide, position: .after(self))
        } catch {
            upstream.close(promise: nil)
            context.close(promise: nil)
            return
        }
        context.channel.closeFuture.whenComplete { _ in upstream.close(promise: nil) }
        releaseHeld(context: context)
    }

    static func statusJSON(code: Int, message: String) -> [UInt8] {
        let reason = code == 401 ? "Unauthorized" : code == 403 ? "Forbidden" : "ServiceUnavailable"
        let object: [String: Any] = [
            "kind": "Status", "apiVersion": "v1", "metadata": [String: Any](), "status": "Failure", "message": message, "reason": reason, "code": code,
        ]
        return Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8))
    }
}

/// Answers the first request on a refused Kubernetes connection with a `Status` and closes.
final class KubeRefusal: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = ByteBuffer
    let code: Int
    let message: String
    private var answered = false

    init(code: Int, message: String) {
        self.code = code
        self.message = message
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head = unwrapInboundIn(data), !answered else { return }
        answered = true
        let body = KubeFrontGate.statusJSON(code: code, message: message)
        let status = code == 401 ? "Unauthorized" : code == 403 ? "Forbidden" : code == 400 ? "Bad Request" : "Bad Gateway"
        let head = "HTTP/1.1 \(code) \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(bytes: Array(head.utf8) + body))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
