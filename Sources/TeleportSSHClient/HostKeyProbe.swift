import Foundation
package import NIOCore
import NIOPosix
import NIOSSH
import TeleportAPI
package import TeleportCrypto
import TeleportSSH

/// Reads the host key an SSH server presents: a key exchange, then the connection is closed
/// before any authentication (`tsh known-hosts` uses it for the proxy's own SSH port).
package enum HostKeyProbe {
    /// The key `host:port` presents, or a `connectionProblem` naming the address.
    package static func presentedKey(host: String, port: Int, timeout: TimeAmount = .seconds(5)) async throws -> SSHPublicKey {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let found = loop.makePromise(of: NIOSSHPublicKey.self)
        let address = HostPort.join(host, port)
        let timer = loop.scheduleTask(in: timeout) {
            found.fail(TeleportError.connectionProblem("the SSH server at \(address) presented no host key within \(timeout.nanoseconds / 1_000_000_000) s"))
        }
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let configuration = SSHClientConfiguration(userAuthDelegate: NoOffers(), serverAuthDelegate: RecordingHostKey(found: found))
                        try channel.pipeline.syncOperations.addHandlers([
                            NIOSSHHandler(role: .client(configuration), allocator: channel.allocator, inboundChildChannelInitializer: nil),
                            ProbeErrors(found: found),
                        ])
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            timer.cancel()
            found.fail(error)
            throw TeleportError.connectionProblem("cannot connect to the SSH server at \(address): \(error)")
        }
        channel.closeFuture.whenComplete { _ in
            found.fail(TeleportError.connectionProblem("the SSH server at \(address) closed the connection before presenting a host key"))
        }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        return try SSHKeyBridge.publicKey(try await found.futureResult.get())
    }

    /// Records the key and stops the handshake there.
    final class RecordingHostKey: NIOSSHClientServerAuthenticationDelegate, @unchecked Sendable {
        let found: EventLoopPromise<NIOSSHPublicKey>
        init(found: EventLoopPromise<NIOSSHPublicKey>) { self.found = found }

        func validateHostKey(hostKey: NIOSSHPublicKey, validationCompletePromise: EventLoopPromise<Void>) {
            found.succeed(hostKey)
            validationCompletePromise.fail(TeleportError.connectionProblem("host key read; closing"))
        }
    }

    /// Offers nothing (the probe never gets that far).
    final class NoOffers: NIOSSHClientUserAuthenticationDelegate, @unchecked Sendable {
        func nextAuthenticationType(
            availableMethods: NIOSSHAvailableUserAuthenticationMethods, nextChallengePromise: EventLoopPromise<NIOSSHUserAuthenticationOffer?>
        ) {
            nextChallengePromise.succeed(nil)
        }
    }

    /// Turns a connection error before the host key into the probe's failure.
    final class ProbeErrors: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = Any
        let found: EventLoopPromise<NIOSSHPublicKey>
        init(found: EventLoopPromise<NIOSSHPublicKey>) { self.found = found }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            found.fail(error)
            context.close(promise: nil)
        }
    }
}
