import Foundation
import TeleportAPI

extension Profile {
    /// The profile file's text: flat YAML, every string value double-quoted (JSON string syntax,
    /// which YAML reads the same), so no user or host name can break the file.
    public var yamlText: String {
        var lines = [
            "web_proxy_addr: \(Self.quote(webProxyAddress.hostPort))"
        ]
        if let sshProxyAddress { lines.append("ssh_proxy_addr: \(Self.quote(sshProxyAddress))") }
        lines.append("user: \(Self.quote(user))")
        lines.append("cluster: \(Self.quote(cluster))")
        lines.append("insecure: \(insecure)")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Parses the text ``yamlText`` writes (and the same keys written by hand, plain or quoted).
    ///
    /// Unknown keys are ignored (a newer `tsh` may add some); anything that is not a flat
    /// `key: value` line, and missing `web_proxy_addr` or `user`, is an error naming `source`.
    public init(yamlText text: String, source: String) throws {
        var values: [String: String] = [:]
        for (number, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line == "---" { continue }
            guard let colon = line.firstIndex(of: ":"), rawLine.first.map({ !$0.isWhitespace }) ?? false else {
                throw TeleportError.badParameter("\(Self.prefix(source))line \(number + 1) is not a \"key: value\" line")
            }
            let key = String(line[..<colon]).trimmingCharacters(in: .whitespaces)
            let rawValue = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                throw TeleportError.badParameter("\(Self.prefix(source))line \(number + 1) has no valid key")
            }
            values[key] = try Self.unquote(rawValue, source: source, line: number + 1)
        }
        guard let web = values["web_proxy_addr"], !web.isEmpty else {
            throw TeleportError.badParameter("\(Self.prefix(source))web_proxy_addr is missing")
        }
        guard let user = values["user"], !user.isEmpty else {
            throw TeleportError.badParameter("\(Self.prefix(source))user is missing")
        }
        let address: ProxyAddress
        do {
            address = try ProxyAddress(parsing: web)
        } catch let error as TeleportError {
            throw TeleportError.badParameter("\(Self.prefix(source))web_proxy_addr: \(error.message)")
        }
        let insecure: Bool
        switch values["insecure"]?.lowercased() {
        case nil, "false", "no", "": insecure = false
        case "true", "yes": insecure = true
        case let other?: throw TeleportError.badParameter("\(Self.prefix(source))insecure must be true or false, not \"\(other)\"")
        }
        self.init(
            webProxyAddress: address, sshProxyAddress: values["ssh_proxy_addr"].flatMap { $0.isEmpty ? nil : $0 }, user: user,
            cluster: values["cluster"] ?? "", insecure: insecure)
    }

    /// `source: ` for messages, or nothing when the caller names the file itself.
    static func prefix(_ source: String) -> String { source.isEmpty ? "" : "\(source): " }

    static func quote(_ value: String) -> String {
        let data = (try? JSONEncoder().encode(value)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func unquote(_ value: String, source: String, line: Int) throws -> String {
        if value.hasPrefix("\"") {
            guard let decoded = try? JSONDecoder().decode(String.self, from: Data(value.utf8)) else {
                throw TeleportError.badParameter("\(Self.prefix(source))line \(line) has a malformed quoted value")
            }
            return decoded
        }
        if value.hasPrefix("'") {
            guard value.count >= 2, value.hasSuffix("'") else {
                throw TeleportError.badParameter("\(Self.prefix(source))line \(line) has a malformed quoted value")
            }
            return String(value.dropFirst().dropLast()).replacingOccurrences(of: "''", with: "'")
        }
        if let first = value.first, "[{&*!|>%@`".contains(first) {
            throw TeleportError.badParameter("\(Self.prefix(source))line \(line) has a value this version does not understand")
        }
        if let hash = value.range(of: " #") { return String(value[..<hash.lowerBound]).trimmingCharacters(in: .whitespaces) }
        return value
    }
}
