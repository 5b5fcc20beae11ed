public import NIOCore
public import NIOSSL
import TeleportAuthClient
public import TeleportTunnel

/// How the web port serves a connection whose TLS ClientHello offers a registered ALPN protocol
/// (see ``ALPNRouterChannel``). Register one with ``ProxyWebServer/Settings/route(_:to:)``.
public enum ALPNRoute: Sendable {
    /// No TLS termination at the proxy: the ClientHello and the rest of the stream are piped raw
    /// to `host:port`, so TLS (and its client certificate) stays end to end.
    case passthrough(host: String, port: Int)
    /// As ``passthrough``, to the first of `targets` that accepts the connection (the auth servers
    /// of a proxy with `auth_servers: [a, b]`): a refused connect moves to the next.
    case passthroughAny([(host: String, port: Int)])
    /// TLS terminated with the context; then the closure takes over the channel (adds its
    /// handlers after the TLS handler; the ClientHello is delivered once its future succeeds).
    case terminate(NIOSSLContext, @Sendable (any Channel) -> EventLoopFuture<Void>)
    /// As ``terminate``, with the context current when the connection arrives (reverse tunnels
    /// during a CA rotation: the proxy's renewed identity and the CAs trusted now).
    case terminateCurrent(TLSContextSource, @Sendable (any Channel) -> EventLoopFuture<Void>)

    /// The ALPN protocol of agents' calls to the auth service through the proxy's web port
    /// (passed through to the auth service).
    public static let authProtocol = AuthClient.alpnProtocol
}
