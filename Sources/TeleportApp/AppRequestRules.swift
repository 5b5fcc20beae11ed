import Foundation
public import NIOHTTP1
import TeleportAPI

/// The header rules of one forwarded request, without I/O: which client headers never reach the
/// app (`teleport-jwt-assertion`, `X-Forwarded-*`, `X-Teleport-*`, `Forwarded` and the hop-by-hop
/// headers), which the service sets (`X-Forwarded-For/Proto/Host`, the assertion, the app's
/// `rewrite.headers`), whether a request's `Host` names the app, and how a response's `Location`
/// pointing at the app's internal host is rewritten to its public address.
public enum AppRequestRules {
    /// The header carrying the JWT.
    public static let assertionHeader = "teleport-jwt-assertion"
    /// Hop-by-hop headers (RFC 9110 §7.6.1) and others that must not cross the proxy.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "upgrade",
    ]

    /// Whether a client header is dropped before the request reaches the app.
    public static func isStripped(_ name: String) -> Bool {
        isStrippedLowercased(name.lowercased())
    }

    /// ``isStripped(_:)`` of a name already lower-cased.
    static func isStrippedLowercased(_ lower: String) -> Bool {
        lower == assertionHeader || lower.hasPrefix("x-forwarded-") || lower.hasPrefix("x-teleport-") || lower == "forwarded"
            || hopByHop.contains(lower)
    }

    /// Whether a request asks to switch to the WebSocket protocol (RFC 6455 §4.1): `GET`, a
    /// `Connection` header naming `upgrade` and `Upgrade: websocket`. Such a request is forwarded
    /// with its `Upgrade` and, on the app's `101`, both connections carry bytes.
    public static func isWebSocketUpgrade(_ head: HTTPRequestHead) -> Bool {
        guard head.method == .GET, connectionTokens(head.headers).contains("upgrade") else { return false }
        let protocols = head.headers["upgrade"].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        return protocols == ["websocket"]
    }

    /// Whether a request asks for any protocol switch (`Connection: upgrade` and an `Upgrade`
    /// header): the HTTP decoder reads nothing more after such a request.
    public static func asksUpgrade(_ head: HTTPRequestHead) -> Bool {
        connectionTokens(head.headers).contains("upgrade") && !head.headers["upgrade"].isEmpty
    }

    /// The tokens of the `Connection` headers, lower-cased.
    static func connectionTokens(_ headers: HTTPHeaders) -> Set<String> {
        Set(headers["connection"].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces).lowercased() })
    }

    /// The host part of a `Host` header (no port; IPv6 brackets kept), lower-cased.
    public static func hostName(_ header: String) -> String {
        let lower = header.lowercased()
        if lower.hasPrefix("[") { return String(lower.prefix { $0 != "]" }) + "]" }
        return String(lower.prefix { $0 != ":" })
    }

    /// Whether a request's `Host` header names the app served at `publicAddr`.
    public static func hostMatches(_ header: String?, publicAddr: String) -> Bool {
        guard let header, !header.isEmpty else { return false }
        return hostName(header) == publicAddr.lowercased()
    }

    /// What the app receives: the client's head with the stripped headers removed, `Host` set to
    /// the app's internal host, `X-Forwarded-For` (the client's address), `X-Forwarded-Proto`
    /// (`https`), `X-Forwarded-Host` (the public host the client used), the assertion, the
    /// configured extra headers, and no `Connection` (HTTP/1.1 keep-alive: the service keeps its
    /// connection to the app for the next requests) — `Connection: close` after another
    /// protocol's upgrade request — or, for a WebSocket upgrade (``isWebSocketUpgrade(_:)``), `Connection: Upgrade` and
    /// `Upgrade: websocket` (the `Sec-WebSocket-*` headers pass as any other).
    public static func upstreamHead(
        _ head: HTTPRequestHead, internalHost: String, clientAddress: String, publicHost: String, assertion: String,
        extraHeaders: [(name: String, value: String)]
    ) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        let webSocket = isWebSocketUpgrade(head)
        // Headers named by Connection are hop-by-hop too.
        let named = connectionTokens(head.headers)
        headers.reserveCapacity(head.headers.count + extraHeaders.count + 5)
        for (name, value) in head.headers {
            // Lower-cased once per header (this runs for every request).
            let lower = name.lowercased()
            if !isStrippedLowercased(lower) && !named.contains(lower) && lower != "host" { headers.add(name: name, value: value) }
        }
        for (name, value) in extraHeaders {
            headers.replaceOrAdd(name: name, value: value)
        }
        headers.replaceOrAdd(name: "Host", value: internalHost)
        headers.replaceOrAdd(name: "X-Forwarded-For", value: clientHost(clientAddress))
        headers.replaceOrAdd(name: "X-Forwarded-Proto", value: "https")
        headers.replaceOrAdd(name: "X-Forwarded-Host", value: publicHost)
        headers.replaceOrAdd(name: assertionHeader, value: assertion)
        if webSocket {
            headers.replaceOrAdd(name: "Connection", value: "Upgrade")
            headers.replaceOrAdd(name: "Upgrade", value: "websocket")
        } else if asksUpgrade(head) {
            // Another protocol's upgrade: the client's connection ends after it, so does this one.
            headers.replaceOrAdd(name: "Connection", value: "close")
        }
        var upstream = HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri)
        upstream.headers = headers
        return upstream
    }

    /// The IP of an address as NIO prints it (`[IPv4]/127.0.0.1:5000`), or the text as given.
    static func clientHost(_ address: String) -> String {
        var text = address
        if let slash = text.lastIndex(of: "/") { text = String(text[text.index(after: slash)...]) }
        if text.hasPrefix("[") { return String(text.dropFirst().prefix { $0 != "]" }) }
        if text.filter({ $0 == ":" }).count == 1 { return String(text.prefix { $0 != ":" }) }
        return text
    }

    /// The app's response head as the client gets it: hop-by-hop headers removed, and a
    /// `Location` whose host is the app's internal host (or one of `redirectHosts`) rewritten to
    /// `https://<public host>` with the same path and query. A `101 Switching Protocols` to
    /// WebSocket keeps `Connection: Upgrade` and `Upgrade: websocket`.
    public static func clientHead(
        _ head: HTTPResponseHead, internalHosts: Set<String>, publicHost: String
    ) -> HTTPResponseHead {
        var result = head
        for name in hopByHop { result.headers.remove(name: name) }
        if head.status == .switchingProtocols {
            result.headers.replaceOrAdd(name: "Connection", value: "Upgrade")
            result.headers.replaceOrAdd(name: "Upgrade", value: "websocket")
        }
        if let location = head.headers.first(name: "location"), let rewritten = rewriteLocation(location, internalHosts: internalHosts, publicHost: publicHost) {
            result.headers.replaceOrAdd(name: "Location", value: rewritten)
        }
        return result
    }

    /// `location` with its scheme and authority replaced when its host is one of `internalHosts`
    /// (lower-case host names, without ports); nil when it is left alone (relative, or another host).
    public static func rewriteLocation(_ location: String, internalHosts: Set<String>, publicHost: String) -> String? {
        guard let components = URLComponents(string: location), let host = components.host?.lowercased(), components.scheme != nil else {
            return nil
        }
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        guard internalHosts.contains(bare) || internalHosts.contains(host) else { return nil }
        var path = components.percentEncodedPath
        if path.isEmpty { path = "/" }
        let query = components.percentEncodedQuery.map { "?" + $0 } ?? ""
        let fragment = components.percentEncodedFragment.map { "#" + $0 } ?? ""
        return "https://\(publicHost)\(path)\(query)\(fragment)"
    }
}
