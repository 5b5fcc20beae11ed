import Foundation
import TeleportAPI

extension FileConfig {
    /// Adds the database of `teleport db start`'s flags to `db_service.databases` and enables the
    /// service; every flag is checked as its `teleport.yaml` key would be, with a line naming the flag.
    mutating func addDatabase(_ flags: DatabaseFlags) throws {
        do {
            try ResourceName.validate(flags.name, kind: "database name")
        } catch {
            throw TeleportError.badParameter("--name: \"\(flags.name)\" is not a database name of letters, digits, '-', '_' and '.' (such as sales-db)")
        }
        guard DatabaseServer.DatabaseProtocol(rawValue: flags.protocol) != nil else {
            throw TeleportError.badParameter("--protocol: \"\(flags.protocol)\" is not a database protocol (postgres or mysql)")
        }
        guard let parsed = try? HostPort.parse(flags.uri, defaultPort: 0, key: "--uri"), parsed.port != 0, !parsed.host.isEmpty else {
            throw TeleportError.badParameter("--uri: \"\(flags.uri)\" is not the database's host:port, such as localhost:5432")
        }
        var labels: [String: String] = [:]
        if let text = flags.labels {
            let parsed = try LabelFlag.parse(text)
            guard parsed.commands.isEmpty else {
                throw TeleportError.badParameter("--labels: dynamic labels of databases are not supported yet; give static labels (k=v,k2=v2)")
            }
            labels = parsed.static
        }
        if let path = flags.caCertFile, !FileManager.default.isReadableFile(atPath: path) {
            throw TeleportError.badParameter("--ca-cert-file: cannot read \(path) (give the PEM file of the CA that signs the database's certificate)")
        }
        guard !db.databases.contains(where: { $0.name == flags.name }) else {
            throw TeleportError.badParameter("--name: the configuration already has a database named \"\(flags.name)\"; choose another name")
        }
        db.enabled = true
        db.databases.append(
            DatabaseEntry(
                name: flags.name, description: flags.description ?? "", protocol: flags.protocol, uri: flags.uri, staticLabels: labels,
                caCertFile: flags.caCertFile))
    }
}
