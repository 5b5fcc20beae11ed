import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import TeleportAPI

/// The client side of the proxy's TLS tunnel on the web port (see the proxy's `ProxyTunnel`):
/// TLS with the user's certificate and the ALPN protocol ``alpnProtocol``, one request line
/// `HOST:PORT@CLUSTER`, then `OK` and the node's byte stream, or `ERR reason`.
enum ProxyTunnelClient {
    static let alpnProtocol = "teleport-proxy-ssh"
}

extension ProxyHTTPSClient {
    /// A connection to `target` through the proxy's web port; `handlers` adds what reads the
    /// node's bytes (`ByteBuffer`s), and bytes that arrive with the answer are kept for it.
    func openTunnel(to target: String, handlers: @escaping @Sendable (any Channel) throws -> Void) async throws -> any Channel {
        let setup = TunnelSetupHandler(request: target)
        let result = setup.result
        let context = tunnelContext
        let serverHostname = self.serverHostname
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(10))
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: serverHostname))
                        try channel.pipeline.syncOperations.addHandler(setup)
                    }
                }
                .connect(host: address.host, port: address.port).get()
        } catch {
            throw Self.convert(error, address: address)
        }
        do {
            try await result.get()
        } catch {
            channel.close(promise: nil)
            if let error = error as? TeleportError { throw error }
            throw Self.convert(error, address: address)
        }
        try await channel.eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
            do {
                try handlers(channel)
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
            return channel.pipeline.syncOperations.removeHandler(setup)
        }.get()
        return channel
    }
}

/// Sends the request line once connected and completes with the proxy's answer; bytes after the
/// answer are held until the handler is removed.
final class TunnelSetupHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let request: String
    private let promise: EventLoopPromise<Void>
    let result: EventLoopFuture<Void>
    private var answer = ByteBuffer()
    private var done = false
    private var held: [ByteBuffer] = []

    init(request: String) {
        self.request = request
        promise = MultiThreadedEventLoopGroup.singleton.any().makePromise(of: Void.self)
        result = promise.futureResult
    }

    deinit {
        if !done { promise.fail(TeleportError.connectionProblem("the connection to the proxy closed")) }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: request + "\n")), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !done else {
            held.append(bytes)
            return
        }
        answer.writeBuffer(&bytes)
        guard let newline = answer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if answer.readableBytes > 4096 { finish(TeleportError.connectionProblem("the proxy's answer is not a tunnel answer")) }
            return
        }
        let line = String(decoding: answer.readSlice(length: newline - answer.readerIndex)!.readableBytesView, as: UTF8.self)
        answer.moveReaderIndex(forwardBy: 1)
        if answer.readableBytes > 0 { held.append(answer.readSlice(length: answer.readableBytes)!) }
        if line == "OK" {
            finish(nil)
        } else if line.hasPrefix("ERR ") {
            finish(TeleportError.connectionProblem(String(line.dropFirst(4))))
        } else {
            finish(
                TeleportError.connectionProblem(
                    "the proxy does not offer SSH tunnels on its web port (it answered \(line.prefix(40).debugDescription))"))
        }
    }

    private func finish(_ error: TeleportError?) {
        guard !done else { return }
        done = true
        if let error { promise.fail(error) } else { promise.succeed(()) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(TeleportError.connectionProblem("the proxy closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done {
            done = true
            promise.fail(error)
        }
        context.close(promise: nil)
    }

    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        let pending = held
        held.removeAll()
        for bytes in pending { context.fireChannelRead(NIOAny(bytes)) }
        if !pending.isEmpty { context.fireChannelReadComplete() }
        context.leavePipeline(removalToken: removalToken)
    }
}
