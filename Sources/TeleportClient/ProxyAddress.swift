import Foundation
import TeleportAPI

/// The proxy's web address as `tsh --proxy` takes it: `HOST[:PORT]` (default port 3080), with or
/// without `https://`. The host names the profile (`~/.tsh/<host>.yaml`, `~/.tsh/keys/<host>/`).
public struct ProxyAddress: Sendable, Equatable, CustomStringConvertible {
    /// The default port of the proxy's HTTPS listener.
    public static let defaultWebPort = 3080

    /// The host name or address.
    public var host: String
    /// The HTTPS port.
    public var port: Int

    /// Creates an address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST[:PORT]`, `[V6]:PORT` or `https://HOST[:PORT][/]`.
    ///
    /// - Throws: ``TeleportError`` `badParameter` naming `--proxy` for an empty or malformed address.
    public init(parsing text: String) throws {
        var value = text.trimmingCharacters(in: .whitespaces)
        while value.hasSuffix("/") { value.removeLast() }
        let parsed = try HostPort.parse(value, defaultPort: Self.defaultWebPort, key: "--proxy")
        guard parsed.host != "0.0.0.0", !parsed.host.isEmpty else {
            throw TeleportError.badParameter("--proxy: \"\(text)\" has no host (expected HOST[:PORT], e.g. proxy.example.com:3080)")
        }
        guard parsed.port > 0 else {
            throw TeleportError.badParameter("--proxy: \"\(text)\" has port 0 (expected HOST[:PORT])")
        }
        self.init(host: parsed.host, port: parsed.port)
    }

    /// `host:port` (`[v6]:port` for IPv6 literals).
    public var hostPort: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// `https://host:port`.
    public var url: String { "https://\(hostPort)" }

    /// The profile name: the host, as Teleport names `~/.tsh/<host>.yaml`.
    public var profileName: String { host }

    public var description: String { hostPort }
}
