import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Trusted clusters (issue 20) with two real clusters: the root's `tctl tokens add
/// --type=trusted_cluster`, the leaf's `tctl create` of a `trusted_cluster` (its auth service calls
/// the root proxy's web port), `tctl get rc`, `tctl auth ls` on both sides, enabling and disabling,
/// `tctl rm rc/NAME`, and the refusals (bad regex, node token, spent token).
@Suite("trusted clusters: establishing trust between two real clusters", .serialized)
struct TrustedClusterIntegrationTests {
    static func trustYAML(token: String, webProxy: String, remote: String = "access", enabled: Bool = true, name: String = "root.example") -> String {
        """
        kind: trusted_cluster
        version: v2
        metadata:
          name: \(name)
        spec:
          enabled: \(enabled)
          \(token.isEmpty ? "" : "token: \(token)")
          web_proxy_addr: \(webProxy)
          role_map:
            - remote: "\(remote)"
              local: [access]
        """
    }

    func write(_ text: String, _ name: String, in cluster: ClusterFixture) throws -> String {
        let url = cluster.directory.appendingPathComponent(name)
        try TestSupport.write(text, to: url)
        return url.path
    }

    func token(from output: String) throws -> String {
        let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("The cluster invite token: ") }, "no token in: \(output)")
        return String(line.dropFirst("The cluster invite token: ".count))
    }

    @Test("a leaf establishes trust with a single-use token; both sides list the other's CAs; rm rc ends it")
    func establishTrust() async throws {
        let root = try ClusterFixture(clusterName: "root.example")
        let leaf = try ClusterFixture(clusterName: "leaf.example")
        do {
            try await run(root: root, leaf: leaf)
        } catch {
            await root.cleanUp()
            await leaf.cleanUp()
            throw error
        }
        await root.cleanUp()
        await leaf.cleanUp()
    }

    func run(root: ClusterFixture, leaf: ClusterFixture) async throws {
        try await root.start()
        try await leaf.start()
        let webProxy = "127.0.0.1:\(root.webPort)"

        // A role map with an invalid regex is refused before anything is sent, naming the field.
        let badRegex = try await leaf.tctl(["create", try write(Self.trustYAML(token: "x", webProxy: webProxy, remote: "^(team$"), "bad.yaml", in: leaf)])
        #expect(badRegex.exitCode != 0)
        #expect(badRegex.stderr.contains("spec.role_map[0].remote"), "\(badRegex)")

        // A node token is not a trusted_cluster token.
        let nodeToken = try await root.tctl(["tokens", "add", "--type=node", "--ttl=15m"])
        let nodeLine = try #require(nodeToken.stdout.split(separator: "\n").first { $0.hasPrefix("The node token: ") }, "\(nodeToken)")
        let nodeValue = String(nodeLine.dropFirst("The node token: ".count))
        let withNode = try await leaf.tctl(["create", try write(Self.trustYAML(token: nodeValue, webProxy: webProxy), "node.yaml", in: leaf)])
        #expect(withNode.exitCode != 0)
        #expect(withNode.stderr.contains("does not allow joining as Trusted_cluster"), "\(withNode)")
        #expect(try await root.tctl(["get", "rc"]).stdout.contains("leaf.example") == false)

        // The real exchange.
        let added = try await root.tctl(["tokens", "add", "--type=trusted_cluster", "--ttl=15m"])
        #expect(added.exitCode == 0, "\(added)")
        let value = try token(from: added.stdout)
        // Named after another cluster: the root refuses before it spends the token.
        let misnamed = try await leaf.tctl(["create", try write(Self.trustYAML(token: value, webProxy: webProxy, name: "main"), "misnamed.yaml", in: leaf)])
        #expect(misnamed.exitCode != 0)
        #expect(misnamed.stderr.contains("this root cluster is called \"root.example\", not \"main\""), "\(misnamed)")
        let created = try await leaf.tctl(["create", try write(Self.trustYAML(token: value, webProxy: webProxy), "tc.yaml", in: leaf)])
        #expect(created.exitCode == 0, "\(created)\n\(leaf.log.suffix(3000))")
        #expect(created.stdout.contains("trusted_cluster \"root.example\" has been created"))

        let rc = try await root.tctl(["get", "rc"])
        #expect(rc.stdout.contains("kind: remote_cluster"), "\(rc)")
        #expect(rc.stdout.contains("name: leaf.example"))
        #expect(rc.stdout.contains("connection: offline"))
        let tc = try await leaf.tctl(["get", "trusted_cluster/root.example"])
        #expect(tc.stdout.contains("web_proxy_addr"), "\(tc)")
        #expect(!tc.stdout.contains(value), "the spent token is stored on the leaf")

        let rootCAs = try await root.tctl(["auth", "ls"])
        #expect(rootCAs.exitCode == 0, "\(rootCAs)")
        #expect(rootCAs.stdout.contains("CA keys for the local cluster root.example"))
        let rootTrusted = rootCAs.stdout.components(separatedBy: "CA Keys for Trusted Clusters:").last ?? ""
        #expect(rootTrusted.contains("leaf.example") && rootTrusted.contains("user") && rootTrusted.contains("host"), "\(rootCAs.stdout)")
        let leafCAs = try await leaf.tctl(["auth", "ls"])
        let leafTrusted = leafCAs.stdout.components(separatedBy: "CA Keys for Trusted Clusters:").last ?? ""
        #expect(leafTrusted.contains("root.example") && leafTrusted.contains("access -> access"), "\(leafCAs.stdout)")

        // The token is spent: a second leaf (or the same one again) is refused.
        let again = try await leaf.tctl(["create", "-f", try write(Self.trustYAML(token: value, webProxy: webProxy), "again.yaml", in: leaf)])
        #expect(again.exitCode != 0)
        #expect(again.stderr.contains("not valid") || again.stderr.contains("already trusted"), "\(again)")

        // Disabling needs no token and no exchange; re-enabling neither.
        let disabled = try await leaf.tctl(["create", "-f", try write(Self.trustYAML(token: "", webProxy: webProxy, enabled: false), "off.yaml", in: leaf)])
        #expect(disabled.exitCode == 0, "\(disabled)")
        #expect(try await leaf.tctl(["get", "tc"]).stdout.contains("enabled: false"))
        let enabled = try await leaf.tctl(["create", "-f", try write(Self.trustYAML(token: "", webProxy: webProxy), "on.yaml", in: leaf)])
        #expect(enabled.exitCode == 0, "\(enabled)")

        // The root ends the trust.
        let removed = try await root.tctl(["rm", "rc/leaf.example"])
        #expect(removed.exitCode == 0, "\(removed)")
        let after = try await root.tctl(["auth", "ls"])
        #expect(!(after.stdout.components(separatedBy: "CA Keys for Trusted Clusters:").last ?? "").contains("leaf.example"), "\(after.stdout)")
        #expect(!(try await root.tctl(["get", "rc"])).stdout.contains("leaf.example"))

        // The audit on the root holds the exchange and the refusal, never the token.
        let events = try await root.tctl(["events", "ls", "--type=trusted_cluster.create,trusted_cluster.delete", "--format=json"])
        #expect(events.stdout.contains("T7000I") && events.stdout.contains("T7000W") && events.stdout.contains("T7001I"), "\(events)")
        #expect(!events.stdout.contains(value) && !events.stdout.contains(nodeValue))
    }

    /// A stand-in "root" that does not know the token: an HTTPS server (Python's `ssl`, a
    /// self-signed certificate from `openssl req`) that answers the exchange with a seal it had to
    /// guess. The leaf must refuse, audit the refusal and trust nothing.
    static let fakeRoot = """
        import json, ssl, sys
        from http.server import BaseHTTPRequestHandler, HTTPServer
        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                req = json.loads(body)
                open(sys.argv[4], "w").write(json.dumps(sorted(req.keys())))
                answer = {"cluster_name": "root.example", "cert_authorities": req["cert_authorities"], "seal": "00" * 32}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            def log_message(self, *args):
                pass
        server = HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.serve_forever()
        """

    @Test("a root whose answer the token does not vouch for is refused on the leaf; nothing is trusted")
    func forgedRootIsRefused() async throws {
        let leaf = try ClusterFixture(clusterName: "leaf.example")
        let dir = try TestSupport.makeTemporaryDirectory(prefix: "fakeroot")
        var fakePID: pid_t?
        do {
            let cert = dir.appendingPathComponent("c.pem").path
            let key = dir.appendingPathComponent("k.pem").path
            let seen = dir.appendingPathComponent("seen.json").path
            let made = try await TestSupport.run(
                "/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=fake"])
            try #require(made.exitCode == 0, "\(made)")
            let script = dir.appendingPathComponent("fake.py")
            try TestSupport.write(Self.fakeRoot, to: script)
            let port = try TestSupport.freeLoopbackPort()
            fakePID = try TestSupport.spawnDaemon("/usr/bin/python3", [script.path, "\(port)", cert, key, seen], logPath: dir.appendingPathComponent("log").path)
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                let probe = try await TestSupport.run("/usr/bin/curl", ["-sk", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:\(port)/x"])
                if probe.stdout != "000" && !probe.stdout.isEmpty { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            try await leaf.start()
            let created = try await leaf.tctl(["create", try write(Self.trustYAML(token: "0123456789abcdef0123456789abcdef", webProxy: "127.0.0.1:\(port)"), "tc.yaml", in: leaf)])
            #expect(created.exitCode != 0)
            #expect(created.stderr.contains("is not vouched for by the token"), "\(created)")
            // The leaf did send its request (so the refusal is the seal's), and trusts nothing.
            #expect((try? String(contentsOfFile: seen, encoding: .utf8))?.contains("root_cluster_name") == true)
            let listing = try await leaf.tctl(["auth", "ls"])
            #expect(!(listing.stdout.components(separatedBy: "CA Keys for Trusted Clusters:").last ?? "").contains("root.example"), "\(listing)")
            let tc = try await leaf.tctl(["get", "tc"])
            #expect(!tc.stdout.contains("root.example"))
            let events = try await leaf.tctl(["events", "ls", "--type=trusted_cluster.create", "--format=json"])
            #expect(events.stdout.contains("T7000W"), "\(events)")
        } catch {
            if let fakePID { await TestSupport.stopDaemon(fakePID) }
            await leaf.cleanUp()
            try? FileManager.default.removeItem(at: dir)
            throw error
        }
        if let fakePID { await TestSupport.stopDaemon(fakePID) }
        await leaf.cleanUp()
        try? FileManager.default.removeItem(at: dir)
    }
}
