import Foundation
import TeleportAPI

extension FileConfig {
    /// `app_service: {enabled, listen_addr, apps: [{name, description, uri, public_addr, labels,
    /// insecure_skip_verify, rewrite: {redirect: [hosts], headers: [{name, value}]}}]}`: every
    /// entry is checked now, with one line naming the key and the fix. An app URI at the cloud
    /// metadata address is refused.
    mutating func parseAppService(_ node: ConfigNode) throws {
        for (key, value) in try node.mapping() {
            switch key {
            case "enabled": app.enabled = try value.bool()
            case "listen_addr": app.listenAddr = try value.address(defaultPort: 3031)
            case "apps":
                var entries: [AppEntry] = []
                for item in try value.list() { entries.append(try parseApp(item)) }
                app.apps = entries
            case "resources", "debug_app":
                warn(value, "the setting is not supported yet; list the apps under app_service.apps")
            default: throw Self.unknown(value, file: node.file)
            }
        }
        var names = Set<String>()
        for (index, entry) in app.apps.enumerated() where !names.insert(entry.name).inserted {
            throw TeleportError.badParameter(
                "\(node.file): app_service.apps[\(index)].name: \"\(entry.name)\" appears twice; give each app its own name")
        }
    }

    /// Headers an app may not set through `rewrite.headers`: they carry the user's identity or
    /// the proxy's view of the request.
    static func isReservedAppHeader(_ name: String) -> Bool {
        let lower = name.lowercased()
        return lower == "teleport-jwt-assertion" || lower.hasPrefix("x-forwarded-") || lower.hasPrefix("x-teleport-") || lower == "host"
            || lower == "connection" || lower == "content-length" || lower == "transfer-encoding"
    }

    mutating func parseApp(_ item: ConfigNode) throws -> AppEntry {
        var name: String?
        var description = ""
        var uri: String?
        var publicAddr: String?
        var labels: [String: String] = [:]
        var insecure = false
        var redirect: [String] = []
        var headers: [[String]] = []
        for (field, value) in try item.mapping() {
            switch field {
            case "name":
                let text = try value.string()
                // The name becomes a DNS label of the app's public address.
                guard (1...63).contains(text.utf8.count), text.first != "-", text.last != "-",
                    text.unicodeScalars.allSatisfy({ $0.isASCII && (("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-") })
                else {
                    throw value.fail("an app name of lower-case letters, digits and '-' (a DNS label, such as grafana)")
                }
                name = text
            case "description": description = try value.string()
            case "uri":
                let text = try value.string()
                do {
                    try AppURI.check(text, source: "\(item.file): \(value.path)", allowMetadataAddress: false)
                } catch let error as TeleportError {
                    throw error
                }
                uri = text
            case "public_addr":
                let text = try value.string().lowercased()
                guard !text.isEmpty, text.utf8.count <= 253, !text.contains(where: { $0 == "/" || $0 == ":" || $0 == " " }) else {
                    throw value.fail("a host name without scheme or port, such as grafana.example.com")
                }
                publicAddr = text
            case "labels":
                for (label, labelValue) in try value.mapping() {
                    let text = try labelValue.string()
                    try LabelRules.check(key: label, source: "\(item.file): \(labelValue.path)")
                    try LabelRules.check(value: text, key: label, source: "\(item.file): \(labelValue.path)")
                    labels[label] = text
                }
            case "commands":
                warn(value, "dynamic labels of apps are not supported yet")
            case "insecure_skip_verify": insecure = try value.bool()
            case "rewrite":
                for (option, optionValue) in try value.mapping() {
                    switch option {
                    case "redirect": redirect = try optionValue.stringList().map { $0.lowercased() }
                    case "headers":
                        for header in try optionValue.list() {
                            var headerName: String?
                            var headerValue: String?
                            for (part, partValue) in try header.mapping() {
                                switch part {
                                case "name": headerName = try partValue.string()
                                case "value": headerValue = try partValue.string()
                                default: throw Self.unknown(partValue, file: item.file)
                                }
                            }
                            guard let headerName, !headerName.isEmpty,
                                headerName.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-") }),
                                let headerValue, !headerValue.contains(where: { $0 == "\r" || $0 == "\n" })
                            else {
                                throw header.fail("a header with a name (letters, digits, '-') and a one-line value")
                            }
                            guard !Self.isReservedAppHeader(headerName) else {
                                throw header.fail("a header other than \(headerName), which Teleport sets itself")
                            }
                            headers.append([headerName, headerValue])
                        }
                    default: throw Self.unknown(optionValue, file: item.file)
                    }
                }
            default: throw Self.unknown(value, file: item.file)
            }
        }
        guard let name else { throw item.fail("an app with a name (name: grafana)") }
        guard let uri else { throw item.fail("an app with a uri (uri: http://localhost:3000)") }
        return AppEntry(
            name: name, description: description, uri: uri, publicAddr: publicAddr, labels: labels, insecureSkipVerify: insecure,
            redirect: redirect, headers: headers)
    }
}

extension FileConfig {
    /// Refuses an app whose URI is one of Teleport's own addresses: an auth server
    /// (`teleport.auth_servers`, `auth_service.listen_addr`) or a listener of a service this file turns on (the
    /// proxy's, the application and database services'). Such an app would let any user with
    /// `app_labels` talk to the cluster's control plane from inside it. A listener on a wildcard
    /// address (0.0.0.0, ::) counts as reached through the loopback names (localhost, 127.x, ::1).
    func checkAppTargets(source: String) throws {
        guard app.enabled || !app.apps.isEmpty else { return }
        var own: [(key: String, host: String, port: Int)] = []
        for (index, server) in teleport.authServers.enumerated() {
            if let parsed = try? HostPort.parse(server, defaultPort: 3025, key: "teleport.auth_servers") {
                own.append(("teleport.auth_servers[\(index)]", parsed.host.lowercased(), parsed.port))
            }
        }
        // The listeners of the services this file turns on.
        var listeners: [(String, String, Int)] = [("app_service.listen_addr", app.listenAddr, 3031)]
        if auth.enabled { listeners.append(("auth_service.listen_addr", auth.listenAddr, 3025)) }
        if proxy.enabled {
            listeners += [
                ("proxy_service.web_listen_addr", proxy.webListenAddr, 3080), ("proxy_service.listen_addr", proxy.listenAddr, 3023),
                ("proxy_service.tunnel_listen_addr", proxy.tunnelListenAddr, 3024),
            ]
        }
        if db.enabled { listeners.append(("db_service.listen_addr", db.listenAddr, 3029)) }
        for (key, value, port) in listeners where !value.isEmpty {
            if let parsed = try? HostPort.parse(value, defaultPort: port, key: key) { own.append((key, parsed.host.lowercased(), parsed.port)) }
        }
        let loopback: Set<String> = ["localhost", "127.0.0.1", "::1", "0.0.0.0", "::", ""]
        for (index, entry) in app.apps.enumerated() {
            guard let parts = try? AppURI.parse(entry.uri, source: "uri") else { continue }
            let host = parts.host.lowercased()
            for address in own where address.port == parts.port {
                let sameHost = address.host == host || (loopback.contains(address.host) && (loopback.contains(host) || host.hasPrefix("127.")))
                guard sameHost else { continue }
                throw TeleportError.badParameter(
                    "\(source): app_service.apps[\(index)].uri: \(entry.uri.prefix(64)) is Teleport's own \(address.key) (\(HostPort.join(address.host, address.port))), "
                        + "which would open the cluster's control plane to the app's users; point the app at its own address")
            }
        }
    }
}
