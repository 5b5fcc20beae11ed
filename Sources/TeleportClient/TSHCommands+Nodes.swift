import Foundation
public import TeleportAPI
import TeleportCrypto
import TeleportSSHClient
import Yams

extension TSHCommands {
    /// Output formats of `tsh ls`.
    public enum ListFormat: String, CaseIterable, Sendable {
        case text, json, yaml, names
    }

    /// The logged-in key and the proxy to use: from `-i` (with `--proxy`) or the current profile.
    static func session(_ options: ClientOptions, context: ClientContext) throws -> (key: ClientKey, address: ProxyAddress, insecure: Bool, cluster: String) {
        if let path = options.identityFile {
            guard let proxy = options.proxyText(context.environment) else {
                throw TeleportError.badParameter("-i needs --proxy=HOST[:PORT] too")
            }
            let key = try IdentityFile.load(path: path).clientKey
            let facts = try CertificateFacts(key: key) { part in "the identity file \(path) (\(part))" }
            try checkNotExpired(identityFile: path, facts: facts, now: context.clock.now())
            return (key, try ProxyAddress(parsing: proxy), options.insecure, facts.clusterName)
        }
        guard let name = try context.store.currentProfileName() else {
            throw TeleportError.accessDenied("not logged in: run tsh login --proxy=HOST first")
        }
        let profile = try context.store.loadProfile(name)
        let loaded = try context.store.loadFacts(profile)
        if loaded.facts.validBefore <= context.clock.now() {
            throw TeleportError.accessDenied("your certificate expired at \(RFC3339.format(loaded.facts.validBefore)): run tsh login again")
        }
        return (loaded.key, profile.webProxyAddress, profile.insecure || options.insecure, profile.cluster)
    }

    /// Refuses an identity file whose certificate expired, saying when and how to get a new one
    /// (the proxy would only answer with a TLS alert).
    static func checkNotExpired(identityFile path: String, facts: CertificateFacts, now: Date) throws {
        guard facts.validBefore <= now else { return }
        throw TeleportError.accessDenied(
            "the certificate in \(path) expired at \(RFC3339.format(facts.validBefore)): get a new one with "
                + "tctl auth sign --user=\(facts.username) --out=\(path) on the auth server, or tsh login --out=\(path)")
    }

    /// `tsh ls [k=v,...] [--format] [-v] [--cluster=NAME]`: the nodes you may reach (another
    /// cluster than the profile's: see ``checkCluster(_:profileCluster:web:)``).
    public static func list(
        _ options: ClientOptions, labels: String, format: ListFormat, verbose: Bool, cluster: String? = nil, context: ClientContext
    ) async throws -> Outcome {
        let session = try session(options, context: context)
        let web = WebClient(transport: try context.userTransport(session.address, session.insecure, session.key), address: session.address)
        let nodes: [ServerNode]
        if try await checkCluster(cluster, profileCluster: session.cluster, web: web), let cluster {
            // A leaf's nodes, as its proxy lists them for the user's mapped roles.
            var required: [String: String] = [:]
            for part in labels.split(separator: ",") where !part.isEmpty {
                guard let equals = part.firstIndex(of: "=") else {
                    throw TeleportError.badParameter("\"\(part)\" is not a label filter key=value")
                }
                required[String(part[..<equals])] = String(part[part.index(after: equals)...])
            }
            nodes = try await web.leafNodes(cluster: cluster, certificate: session.key.sshCertificate).nodes.filter { node in
                let all = node.allLabels
                return required.allSatisfy { all[$0.key] == $0.value }
            }
        } else {
            nodes = try await web.nodes(labels: labels)
        }
        switch format {
        case .names:
            return Outcome(output: nodes.map { TerminalText.escape($0.spec.hostname) + "\n" }.joined())
        case .json:
            // Encoded in one pass (not re-read as a tree and written again: 10,000 nodes).
            let data = try ResourceCodec.jsonEncoder(pretty: true).encode(nodes)
            return Outcome(output: String(decoding: data, as: UTF8.self) + "\n")
        case .yaml:
            return Outcome(output: nodes.isEmpty ? "[]\n" : try ResourceCodec.yaml(nodes))
        case .text:
            func labelText(_ node: ServerNode) -> String {
                node.allLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            }
            let headers = verbose ? ["Node Name", "Node ID", "Address", "Labels"] : ["Node Name", "Address", "Labels"]
            let rows = nodes.map { node in
                verbose ? [node.spec.hostname, node.name, node.displayAddress, labelText(node)] : [node.spec.hostname, node.displayAddress, labelText(node)]
            }
            return Outcome(output: Table.render(headers: headers, rows: rows))
        }
    }

    /// `tsh known-hosts [HOST]`: known_hosts lines for the cluster's nodes (host keys the cluster
    /// vouches for) and its host CA, for OpenSSH's `KnownHostsCommand` or a known_hosts file. With
    /// HOST, only the lines for that node.
    /// With `cluster` a leaf (trusted clusters), the leaf's nodes the user's mapped roles reach,
    /// named `NODE.LEAF`, and no proxy line.
    public static func knownHosts(_ options: ClientOptions, host: String?, cluster: String? = nil, context: ClientContext) async throws -> Outcome {
        let session = try session(options, context: context)
        let web = WebClient(transport: try context.userTransport(session.address, session.insecure, session.key), address: session.address)
        let keys: [AuthAPI.HostKey]
        let nodes: [ServerNode]
        var suffix = session.cluster
        let leaf = try await checkCluster(cluster, profileCluster: session.cluster, web: web)
        if leaf, let cluster {
            let listing = try await web.leafNodes(cluster: cluster, certificate: session.key.sshCertificate)
            (keys, nodes, suffix) = (listing.hostKeys, listing.nodes, cluster)
        } else {
            keys = try await web.hostKeys()
            nodes = try await web.nodes(labels: "")
        }
        // OpenSSH's KnownHostsCommand passes the name it looks up, `[NAME]:PORT` when the port is
        // not 22 (the port it dialled, which through a ProxyCommand need not be the node's own).
        var wanted = host
        if let host, host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            wanted = String(host[host.index(after: host.startIndex)..<close])
        }
        var lines: [String] = []
        for record in keys {
            let node = nodes.first { $0.name == record.hostID } ?? nodes.first { $0.spec.hostname == record.nodeName }
            var names = [record.nodeName, "\(record.nodeName).\(suffix)", record.hostID, "\(record.hostID).\(suffix)"]
            // A leaf's node addresses mean nothing here (and must not vouch for this cluster's).
            if !leaf, let address = node?.spec.addr {
                let parts = address.split(separator: ":")
                if parts.count == 2 {
                    // OpenSSH looks a host up as [NAME]:PORT when the port is not 22.
                    if parts[1] != "22" { names += names.map { "[\($0)]:\(parts[1])" } }
                    names.append(parts[1] == "22" ? String(parts[0]) : "[\(parts[0])]:\(parts[1])")
                }
            }
            if let host, let wanted {
                guard names.contains(host) || names.contains(wanted) else { continue }
                if !names.contains(host) { names.append(host) }
            }
            let key = try SSHPublicKey(authorizedKeyLine: record.publicKey)
            lines.append(names.joined(separator: ",") + " " + key.authorizedKeyLine())
        }
        // The proxy's own line costs a ping and a key exchange: only for the whole list, or a
        // lookup no node answered (OpenSSH runs this command for every connection it makes).
        if !leaf, host == nil || lines.isEmpty {
            lines += await proxyKnownHost(web: web, proxyHost: session.address.host, vouched: keys, host: host, wanted: wanted)
        }
        if host == nil, !leaf { lines += session.key.knownHosts }
        return Outcome(output: lines.map { $0 + "\n" }.joined())
    }

    /// The known_hosts line of the proxy's own SSH port (what `ssh -J PROXY:3023` checks), named
    /// as OpenSSH looks it up (`[HOST]:PORT`, and the announced public address): the key the
    /// proxy presents, read with one key exchange and printed only when the cluster vouches for
    /// it. With `host`, only when it names the proxy. A proxy that cannot be read leaves a comment.
    static func proxyKnownHost(web: WebClient, proxyHost: String, vouched: [AuthAPI.HostKey], host: String?, wanted: String?) async -> [String] {
        guard let ping = try? await web.ping() else { return ["# the proxy's SSH address is unknown: its ping failed"] }
        let port = (try? HostPort.parse(ping.proxy.ssh.listenAddr, defaultPort: 3023, key: "proxy ssh listen_addr").port) ?? 3023
        func lookupName(_ host: String, _ port: Int) -> String { port == 22 ? host : "[\(host)]:\(port)" }
        var names = [lookupName(proxyHost, port)]
        // The announced public address is the proxy's web address: its host, with the SSH port.
        if !ping.proxy.ssh.publicAddr.isEmpty, let announced = try? HostPort.parse(ping.proxy.ssh.publicAddr, defaultPort: 3080, key: "proxy public_addr"),
            announced.host != proxyHost
        {
            names.append(lookupName(announced.host, port))
        }
        if let host, let wanted {
            guard names.contains(host) || names.contains(wanted) else { return [] }
            if !names.contains(host) { names.append(host) }
        }
        let presented: SSHPublicKey
        do {
            presented = try await HostKeyProbe.presentedKey(host: proxyHost, port: port)
        } catch {
            return ["# the proxy's SSH host key could not be read from \(HostPort.join(proxyHost, port)): \((error as? TeleportError)?.message ?? "\(error)")"]
        }
        guard vouched.contains(where: { (try? SSHPublicKey(authorizedKeyLine: $0.publicKey)) == presented }) else {
            return ["# the proxy at \(HostPort.join(proxyHost, port)) presents a host key the cluster does not vouch for (\(presented.fingerprintSHA256)): not listed"]
        }
        return [names.joined(separator: ",") + " " + presented.authorizedKeyLine()]
    }
}

/// Plain text tables: headers, a dashed rule, padded columns. Every cell is shown through
/// ``TerminalText/escape(_:)``: cells hold data from the cluster (host names, labels, user names),
/// and a control character in one must neither act on the terminal nor break the table.
enum Table {
    static func render(headers: [String], rows: [[String]]) -> String {
        let all = [headers, headers.map { String(repeating: "-", count: $0.count) }] + rows.map { $0.map(TerminalText.escape) }
        var widths = [Int](repeating: 0, count: headers.count)
        for row in all {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        // One string appended to: padding each cell through NSString took longer than the rest
        // of `tsh ls` at 10,000 nodes.
        var out = ""
        out.reserveCapacity(all.reduce(0) { total, row in total + row.reduce(row.count) { $0 + $1.utf8.count } } + widths.reduce(0, +) * all.count)
        for row in all {
            for (index, cell) in row.enumerated() {
                if index > 0 { out.append(" ") }
                out.append(cell)
                if index < row.count - 1, index < widths.count {
                    let pad = widths[index] - cell.count
                    if pad > 0 { out.append(String(repeating: " ", count: pad)) }
                }
            }
            out.append("\n")
        }
        return out
    }
}
