public import Hummingbird
public import NIOCore

/// The request context of the auth API: the connection (for its TLS peer certificate) and, once the
/// authentication middleware ran, the caller.
public struct AuthRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection the request came on.
    public let channel: any Channel
    /// The authenticated caller; set by ``AuthenticationMiddleware``.
    public var caller: Caller?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// Bodies are small JSON documents; the resource codec caps documents at 1 MiB.
    public var maxUploadSize: Int { 2 << 20 }
}
