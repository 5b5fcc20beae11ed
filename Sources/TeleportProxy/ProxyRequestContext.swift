import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// The request context of the proxy's HTTPS listener: Hummingbird's core context plus the client's
/// address, taken from the connection (never from a header or the body).
struct ProxyRequestContext: RequestContext, RemoteAddressRequestContext, WebSocketRequestContext {
    /// The largest request body the proxy reads: forms and login requests are small.
    static let maxBodyBytes = 64 * 1024

    var coreContext: CoreRequestContextStorage
    /// The connected client's address.
    let remoteAddress: SocketAddress?
    /// The connection, for the TLS client certificate of `tsh` calls.
    let channel: any Channel
    /// Where the `/webapi/terminal` route leaves its WebSocket handler for the upgrade.
    let webSocket = WebSocketHandlerReference<ProxyRequestContext>()

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }

    var maxUploadSize: Int { Self.maxBodyBytes }

    /// The client's address as `ip:port` (`[ip]:port` for IPv6), for the audit log; `nil` when the
    /// connection has no IP address (never the case on a TCP listener).
    var clientAddress: String? {
        guard let address = remoteAddress, let ip = address.ipAddress else { return nil }
        let host = ip.contains(":") ? "[\(ip)]" : ip
        return address.port.map { "\(host):\($0)" } ?? host
    }
}
