import Foundation
import TeleportAPI

extension FileConfig {
    /// `db_service: {enabled, listen_addr, databases: [{name, description, protocol, uri,
    /// static_labels, dynamic_labels: [{name, command, period}], tls: {mode, ca_cert_file, server_name}}]}`: every entry is checked now, with
    /// one line naming the key and the fix.
    mutating func parseDatabaseService(_ node: ConfigNode) throws {
        for (key, value) in try node.mapping() {
            switch key {
            case "enabled": db.enabled = try value.bool()
            case "listen_addr":
                db.listenAddr = try value.address(defaultPort: 3029)
                db.listenAddrConfigured = true
            case "databases":
                var entries: [DatabaseEntry] = []
                for item in try value.list() { entries.append(try parseDatabase(item)) }
                db.databases = entries
            case "resources", "aws", "azure", "gcp":
                warn(value, "database discovery is not supported yet; list the databases under db_service.databases")
            default: throw Self.unknown(value, file: node.file)
            }
        }
        var names = Set<String>()
        for (index, entry) in db.databases.enumerated() where !names.insert(entry.name).inserted {
            throw TeleportError.badParameter(
                "\(node.file): db_service.databases[\(index)].name: \"\(entry.name)\" appears twice; give each database its own name")
        }
    }

    mutating func parseDatabase(_ item: ConfigNode) throws -> DatabaseEntry {
        var name: String?
        var description = ""
        var proto: String?
        var uri: String?
        var labels: [String: String] = [:]
        var tlsMode = "verify-full"
        var caCertFile: String?
        var serverName: String?
        var dynamicLabels: [LabelCommand] = []
        for (field, value) in try item.mapping() {
            switch field {
            case "name":
                let text = try value.string()
                do {
                    try ResourceName.validate(text, kind: "database name")
                } catch {
                    throw value.fail("a database name of letters, digits, '-', '_' and '.' (such as sales-db)")
                }
                name = text
            case "description": description = try value.string()
            case "protocol":
                let text = try value.string()
                guard DatabaseServer.DatabaseProtocol(rawValue: text) != nil else { throw value.fail("postgres or mysql") }
                proto = text
            case "uri":
                let text = try value.string()
                guard let parsed = try? HostPort.parse(text, defaultPort: 0, key: value.path), parsed.port != 0, !parsed.host.isEmpty else {
                    throw value.fail("the database's host:port, such as localhost:5432")
                }
                uri = text
            case "static_labels":
                for (label, labelValue) in try value.mapping() {
                    let text = try labelValue.string()
                    try LabelRules.check(key: label, source: "\(item.file): \(labelValue.path)")
                    try LabelRules.check(value: text, key: label, source: "\(item.file): \(labelValue.path)")
                    labels[label] = text
                }
            case "dynamic_labels":
                dynamicLabels = try Self.labelCommands(value, file: item.file)
            case "tls":
                for (option, optionValue) in try value.mapping() {
                    switch option {
                    case "mode":
                        let mode = try optionValue.string()
                        guard ["verify-full", "verify-ca", "insecure"].contains(mode) else {
                            throw optionValue.fail("verify-full, verify-ca or insecure")
                        }
                        tlsMode = mode
                    case "ca_cert_file":
                        let path = try optionValue.string()
                        guard FileManager.default.isReadableFile(atPath: path) else {
                            throw TeleportError.badParameter(
                                "\(item.file): \(optionValue.path): cannot read \(path) (give the PEM file of the CA that signs the database's certificate)")
                        }
                        caCertFile = path
                    case "server_name": serverName = try optionValue.string()
                    default: throw Self.unknown(optionValue, file: item.file)
                    }
                }
            case "ad", "aws", "gcp", "azure", "mysql", "admin_user":
                warn(value, "the setting is not supported yet")
            default: throw Self.unknown(value, file: item.file)
            }
        }
        guard let name else { throw item.fail("a database with a name (name: sales)") }
        guard let proto else { throw item.fail("a database with a protocol (protocol: postgres)") }
        guard let uri else { throw item.fail("a database with a uri (uri: localhost:5432)") }
        return DatabaseEntry(
            name: name, description: description, protocol: proto, uri: uri, staticLabels: labels, tlsMode: tlsMode, caCertFile: caCertFile,
            serverName: serverName, dynamicLabels: dynamicLabels)
    }
}
