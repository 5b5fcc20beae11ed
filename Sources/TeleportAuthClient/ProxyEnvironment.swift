import Foundation
import TeleportAPI
import TeleportCrypto

/// The HTTP CONNECT proxy settings of a process's environment (the seed's "HTTP CONNECT Proxies"):
/// `HTTPS_PROXY`/`https_proxy`, then `HTTP_PROXY`/`http_proxy`, and the exceptions of
/// `NO_PROXY`/`no_proxy`. Pure: it reads an injected dictionary and decides, for a target
/// `host:port`, whether an outbound connection goes through a proxy and through which one.
///
/// Rules (those of Go's `httpproxy`, which Teleport uses, except where noted):
/// * a value without a scheme (`proxy.example.com:8080`) means `http://proxy.example.com:8080`;
///   `http://` is the only scheme (an `https://` or `socks5://` proxy is refused with a one-line error);
///   the port defaults to 80; `user:password@` is sent as `Proxy-Authorization: Basic`;
/// * the upper-case name wins over the lower-case one; an empty value is unset;
/// * `NO_PROXY` is a comma- or space-separated list of entries, each optionally with `:port`
///   (then it matches only that port): `*` (everything), a host name (itself and its subdomains),
///   `.example.com` or `*.example.com` (the domain and its subdomains), an IP address
///   (IPv6 with or without brackets), or a CIDR range (`10.0.0.0/8`, `fd00::/8`) matching
///   IP-literal targets in it;
/// * unlike Go, a loopback target is not exempt by itself (list `localhost,127.0.0.1` in
///   `NO_PROXY`, as the seed's systemd example does) and a proxy on a loopback address is accepted.
public struct ProxyEnvironment: Sendable, Equatable {
    /// A proxy to reach a target through.
    public struct Proxy: Sendable, Equatable, CustomStringConvertible {
        /// The proxy's host (a name or an IP address, without brackets).
        public var host: String
        /// The proxy's port.
        public var port: Int
        /// `user` of `http://user:password@host:port`, percent-decoded.
        public var username: String?
        /// `password` of `http://user:password@host:port`, percent-decoded.
        public var password: String?
        /// The environment variable it came from (for messages).
        public var variable: String

        /// `http://host:port` (never the credentials).
        public var description: String { "http://\(HostPort.join(host, port))" }
    }

    /// One `NO_PROXY` entry.
    public enum Exception: Sendable, Equatable {
        /// `*`: no target goes through the proxy.
        case everything
        /// A host name: the name and its subdomains (`.example.com` stored as `example.com`).
        case domain(String, port: Int?)
        /// An IP address or a CIDR range: the bytes (4 or 16) and the prefix length.
        case network([UInt8], prefixLength: Int, port: Int?)
    }

    /// The proxy of `HTTPS_PROXY`, if set.
    public var httpsProxy: Proxy?
    /// The proxy of `HTTP_PROXY`, if set.
    public var httpProxy: Proxy?
    /// The entries of `NO_PROXY`.
    public var exceptions: [Exception]

    /// No proxy at all (direct connections).
    public static let none = ProxyEnvironment(httpsProxy: nil, httpProxy: nil, exceptions: [])

    /// Creates settings from their parts.
    public init(httpsProxy: Proxy?, httpProxy: Proxy?, exceptions: [Exception]) {
        self.httpsProxy = httpsProxy
        self.httpProxy = httpProxy
        self.exceptions = exceptions
    }

    /// Reads the variables from `environment` (the process's, or a test's).
    ///
    /// - Throws: ``TeleportError`` `badParameter`, one line naming the variable and the fix, when a
    ///   proxy URL or a `NO_PROXY` entry cannot be parsed.
    public init(environment: [String: String]) throws {
        func value(_ name: String) -> (name: String, value: String)? {
            for key in [name.uppercased(), name.lowercased()] {
                if let text = environment[key]?.trimmingCharacters(in: .whitespaces), !text.isEmpty { return (key, text) }
            }
            return nil
        }
        httpsProxy = try value("HTTPS_PROXY").map { try Self.parseProxy($0.value, variable: $0.name) }
        httpProxy = try value("HTTP_PROXY").map { try Self.parseProxy($0.value, variable: $0.name) }
        exceptions = try value("NO_PROXY").map { try Self.parseExceptions($0.value, variable: $0.name) } ?? []
    }

    /// The proxy an outbound connection to `host:port` goes through, or nil for a direct connection.
    /// Agents' connections are TLS (the auth API, the web port, the tunnel), so `HTTPS_PROXY` is
    /// preferred and `HTTP_PROXY` is the fallback, as the seed says ("either").
    public func proxy(forHost host: String, port: Int) -> Proxy? {
        guard let proxy = httpsProxy ?? httpProxy else { return nil }
        return bypasses(host: host, port: port) ? nil : proxy
    }

    /// True when `NO_PROXY` exempts `host:port`.
    public func bypasses(host: String, port: Int) -> Bool {
        let target = Self.unbracket(host).lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        let targetIP = SSHCIDRBlock.parseAddress(target).map(Self.unmapped)
        for exception in exceptions {
            switch exception {
            case .everything:
                return true
            case .domain(let domain, let only):
                if let only, only != port { continue }
                if targetIP == nil, target == domain || target.hasSuffix("." + domain) { return true }
            case .network(let bytes, let prefix, let only):
                if let only, only != port { continue }
                if let targetIP, targetIP.count == bytes.count, Self.masked(targetIP, prefix) == Self.masked(bytes, prefix) { return true }
            }
        }
        return false
    }

    /// A one-line description for the startup log: which proxy `address` goes through, or `direct`.
    public func describe(address host: String, port: Int) -> String {
        guard let proxy = proxy(forHost: host, port: port) else {
            let configured = httpsProxy ?? httpProxy
            return configured.map { _ in "\(HostPort.join(host, port)): direct (NO_PROXY)" } ?? "\(HostPort.join(host, port)): direct"
        }
        return "\(HostPort.join(host, port)): through the HTTP CONNECT proxy \(proxy) (\(proxy.variable))"
    }

    // MARK: Parsing

    /// Parses a proxy URL: `[http://][user[:password]@]host[:port][/]`.
    static func parseProxy(_ text: String, variable: String) throws -> Proxy {
        func fail(_ why: String) -> TeleportError {
            TeleportError.badParameter(
                "\(variable)=\(Self.redacted(text)): \(why) (expected http://HOST:PORT or HOST:PORT, e.g. http://proxy.example.com:8080)")
        }
        var rest = Substring(text)
        if let schemeEnd = rest.range(of: "://") {
            let scheme = rest[..<schemeEnd.lowerBound].lowercased()
            guard scheme == "http" else {
                if scheme == "https" {
                    throw fail("a proxy reached over TLS (https://) is not supported; use http://")
                }
                throw fail("the scheme \(scheme):// is not supported")
            }
            rest = rest[schemeEnd.upperBound...]
        }
        if let slash = rest.firstIndex(of: "/") {
            guard rest[slash...].allSatisfy({ $0 == "/" }) else { throw fail("a proxy URL has no path") }
            rest = rest[..<slash]
        }
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                username = percentDecoded(credentials[..<colon])
                password = percentDecoded(credentials[credentials.index(after: colon)...])
            } else {
                username = percentDecoded(credentials)
            }
            guard username != nil, password != nil || !credentials.contains(":") else { throw fail("the credentials are not valid percent-encoding") }
        }
        guard !rest.isEmpty else { throw fail("the host is missing") }
        let (host, port) = try splitHostPort(String(rest), defaultPort: 80) { fail($0) }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "," }) else { throw fail("the host is missing or not valid") }
        return Proxy(host: host, port: port, username: username, password: password, variable: variable)
    }

    /// Parses `NO_PROXY`.
    static func parseExceptions(_ text: String, variable: String) throws -> [Exception] {
        var result: [Exception] = []
        for raw in text.split(whereSeparator: { $0 == "," || $0 == " " }) {
            let entry = raw.trimmingCharacters(in: .whitespaces).lowercased()
            guard !entry.isEmpty else { continue }
            func fail(_ why: String) -> TeleportError {
                TeleportError.badParameter(
                    "\(variable): the entry \"\(entry)\" \(why) (expected host names, .domains, IP addresses or CIDR ranges such as 10.0.0.0/8, separated by commas)")
            }
            if entry == "*" {
                result.append(.everything)
                continue
            }
            if let slash = entry.firstIndex(of: "/") {
                let addressText = String(entry[..<slash])
                let prefixText = entry[entry.index(after: slash)...]
                guard let bytes = SSHCIDRBlock.parseAddress(unbracket(addressText)) else { throw fail("is not a valid CIDR range") }
                guard let prefix = Int(prefixText), prefixText.allSatisfy({ $0.isASCII && $0.isNumber }), prefix <= bytes.count * 8 else {
                    throw fail("has an invalid prefix length")
                }
                result.append(.network(bytes, prefixLength: prefix, port: nil))
                continue
            }
            if let bytes = SSHCIDRBlock.parseAddress(entry) {
                // A bare IPv6 address (its colons are not a port).
                result.append(.network(unmapped(bytes), prefixLength: bytes.count == 4 ? 32 : 128, port: nil))
                continue
            }
            let (host, port) = try splitHostPort(entry, defaultPort: nil) { fail($0) }
            if let bytes = SSHCIDRBlock.parseAddress(host) {
                let plain = unmapped(bytes)
                result.append(.network(plain, prefixLength: plain.count * 8, port: port))
                continue
            }
            var domain = Substring(host)
            if domain.hasPrefix("*.") { domain = domain.dropFirst(2) }
            while domain.hasPrefix(".") { domain = domain.dropFirst() }
            while domain.hasSuffix(".") { domain = domain.dropLast() }
            guard !domain.isEmpty, domain.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" }) else {
                throw fail("is not a host name, a domain, an IP address or a CIDR range")
            }
            result.append(.domain(String(domain), port: port))
        }
        return result
    }

    /// Splits `host[:port]` / `[v6][:port]`.
    static func splitHostPort(
        _ text: String, defaultPort: Int?, fail: (String) -> TeleportError
    ) throws -> (host: String, port: Int?) {
        var host = text
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw fail("has an unclosed [") }
            host = String(text[text.index(after: text.startIndex)..<close])
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw fail("has text after ]") }
                portText = after.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            guard text.firstIndex(of: ":") == colon else { throw fail("is an IPv6 address: write it in brackets, [::1]:8080") }
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
        }
        guard let portText else { return (host, defaultPort) }
        guard let port = Int(portText), portText.allSatisfy({ $0.isASCII && $0.isNumber }), (1...65535).contains(port) else {
            throw fail("has an invalid port \"\(portText)\"")
        }
        return (host, port)
    }

    static func splitHostPort(_ text: String, defaultPort: Int, fail: (String) -> TeleportError) throws -> (host: String, port: Int) {
        let (host, port) = try splitHostPort(text, defaultPort: Optional(defaultPort), fail: fail)
        return (host, port ?? defaultPort)
    }

    static func unbracket(_ host: String) -> String {
        host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }

    static func unmapped(_ bytes: [UInt8]) -> [UInt8] {
        let mappedPrefix: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
        return bytes.count == 16 && Array(bytes.prefix(12)) == mappedPrefix ? Array(bytes.suffix(4)) : bytes
    }

    static func masked(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bits = max(0, min(8, prefix - index * 8))
            return bits == 8 ? byte : byte & UInt8(truncatingIfNeeded: 0xff << (8 - bits))
        }
    }

    static func percentDecoded(_ text: Substring) -> String? {
        String(text).removingPercentEncoding
    }

    /// The URL with its password replaced by `***` (errors never print secrets).
    static func redacted(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@") else { return text }
        let head = text[..<at]
        let schemeEnd = head.range(of: "://")?.upperBound ?? head.startIndex
        guard let colon = head[schemeEnd...].firstIndex(of: ":") else { return text }
        return String(text[..<text.index(after: colon)]) + "***" + String(text[at...])
    }
}
