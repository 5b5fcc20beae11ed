package import NIOCore
package import NIOPosix
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The TCP keepalive every SSH connection of our servers uses (node 3022, proxy 3023) and every
/// byte pipe the proxy or a node dials (`GlueHandler.connect`).
///
/// A client whose host vanishes without a FIN (unplugged, NAT state dropped) is otherwise noticed
/// only by the kernel's default keepalive (two hours, and only with `SO_KEEPALIVE`), so its
/// session, process and connection would stay. With these timers an idle connection is probed after
/// ``idleSeconds``, then every ``intervalSeconds``; after ``probeCount`` unanswered probes the kernel
/// resets it and the server's normal close path ends the session: a dead peer is dropped in about
/// `idle + interval × count` = 120 s.
package enum TCPKeepalive {
    /// `TCP_KEEPIDLE`: seconds of silence before the first probe.
    package static let idleSeconds: ChannelOptions.Types.SocketOption.Value = 60
    /// `TCP_KEEPINTVL`: seconds between probes.
    package static let intervalSeconds: ChannelOptions.Types.SocketOption.Value = 15
    /// `TCP_KEEPCNT`: unanswered probes before the connection is dropped.
    package static let probeCount: ChannelOptions.Types.SocketOption.Value = 4

    /// The `TCP_KEEPIDLE` option.
    package static var idleOption: ChannelOptions.Types.SocketOption {
        .tcpOption(NIOBSDSocket.Option(rawValue: CInt(TCP_KEEPIDLE)))
    }
    /// The `TCP_KEEPINTVL` option.
    package static var intervalOption: ChannelOptions.Types.SocketOption {
        .tcpOption(NIOBSDSocket.Option(rawValue: CInt(TCP_KEEPINTVL)))
    }
    /// The `TCP_KEEPCNT` option.
    package static var countOption: ChannelOptions.Types.SocketOption {
        .tcpOption(NIOBSDSocket.Option(rawValue: CInt(TCP_KEEPCNT)))
    }
}

extension ServerBootstrap {
    /// Turns on ``TCPKeepalive``'s timers on every accepted connection.
    package func tcpKeepaliveOnChildren() -> ServerBootstrap {
        childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelOption(TCPKeepalive.idleOption, value: TCPKeepalive.idleSeconds)
            .childChannelOption(TCPKeepalive.intervalOption, value: TCPKeepalive.intervalSeconds)
            .childChannelOption(TCPKeepalive.countOption, value: TCPKeepalive.probeCount)
    }
}

extension ClientBootstrap {
    /// Turns on ``TCPKeepalive``'s timers on the connection this bootstrap dials.
    package func tcpKeepalive() -> ClientBootstrap {
        channelOption(.socketOption(.so_keepalive), value: 1)
            .channelOption(TCPKeepalive.idleOption, value: TCPKeepalive.idleSeconds)
            .channelOption(TCPKeepalive.intervalOption, value: TCPKeepalive.intervalSeconds)
            .channelOption(TCPKeepalive.countOption, value: TCPKeepalive.probeCount)
    }
}
