/// `host:port` addresses as the configuration and flags write them.
public enum HostPort {
    /// `host:port`, with brackets around an IPv6 host.
    public static func join(_ host: String, _ port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Splits `host:port`, `[v6]:port` or a bare host (then `defaultPort`). `key` names the setting in errors.
    public static func parse(_ text: String, defaultPort: Int, key: String) throws -> (host: String, port: Int) {
        var value = text.trimmingCharacters(in: .whitespaces)
        for scheme in ["https://", "http://", "tcp://"] where value.hasPrefix(scheme) {
            value.removeFirst(scheme.count)
        }
        guard !value.isEmpty else { throw TeleportError.badParameter("\(key): the address is empty") }
        var host = value
        var portText: String?
        if value.hasPrefix("[") {
            guard let close = value.firstIndex(of: "]") else {
                throw TeleportError.badParameter("\(key): \"\(text)\" is not a valid address (unclosed [)")
            }
            host = String(value[value.index(after: value.startIndex)..<close])
            let rest = value[value.index(after: close)...]
            if rest.hasPrefix(":") { portText = String(rest.dropFirst()) } else if !rest.isEmpty {
                throw TeleportError.badParameter("\(key): \"\(text)\" is not a valid address")
            }
        } else if value.filter({ $0 == ":" }).count == 1, let colon = value.firstIndex(of: ":") {
            host = String(value[..<colon])
            portText = String(value[value.index(after: colon)...])
        }
        var port = defaultPort
        if let portText {
            guard let parsed = Int(portText), (0...65535).contains(parsed) else {
                throw TeleportError.badParameter("\(key): \"\(text)\" has an invalid port (expected host:port with port 0-65535)")
            }
            port = parsed
        }
        guard !host.isEmpty || portText != nil else {
            throw TeleportError.badParameter("\(key): \"\(text)\" is not a valid address")
        }
        guard !host.contains(where: { $0.isWhitespace || $0 == "/" }) else {
            throw TeleportError.badParameter("\(key): \"\(text)\" is not a valid address (expected host:port)")
        }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }
}

import Foundation
