import Foundation
import TeleportCrypto
import TeleportAuthClient
import X509
import TeleportAPI

extension TSHCommands {
    /// `tsh apps ls [k=v,...]`: the apps your roles' `app_labels` allow.
    public static func listApps(_ options: ClientOptions, labels: String, json: Bool, context: ClientContext) async throws -> Outcome {
        let session = try session(options, context: context)
        let web = WebClient(transport: try context.userTransport(session.address, session.insecure, session.key), address: session.address)
        let apps = try await web.apps(labels: labels)
        if json {
            let trees = try apps.map { try JSONSerialization.jsonObject(with: ResourceCodec.json($0)) }
            let data = try JSONSerialization.data(withJSONObject: trees, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            return Outcome(output: String(decoding: data, as: UTF8.self) + "\n")
        }
        let rows = apps.map { app in
            [
                app.name, app.spec.description ?? "", app.spec.publicAddr,
                app.allLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","),
            ]
        }
        return Outcome(output: Table.render(headers: ["Application", "Description", "Public Address", "Labels"], rows: rows))
    }

    /// The current profile's app certificates: `keys/HOST/USER-app/NAME-x509.pem` (0600), next
    /// to the user's key and the cluster's CAs.
    static func appFiles(_ options: ClientOptions, context: ClientContext) throws -> DatabaseFiles {
        guard options.identityFile == nil else {
            throw TeleportError.badParameter("tsh apps login, config and logout need a tsh login profile, not -i (identity files hold no app certificates)")
        }
        guard let name = try context.store.currentProfileName() else {
            throw TeleportError.accessDenied("not logged in: run tsh login --proxy=HOST first")
        }
        let profile = try context.store.loadProfile(name)
        let paths = context.store.keyPaths(profile: name, user: profile.user)
        return DatabaseFiles(profile: profile, paths: paths, directory: paths.directory.appendingPathComponent("\(profile.user)-app"))
    }

    /// `tsh apps login NAME`: a certificate for the app, from the auth service through the
    /// proxy, stored in the profile.
    public static func appLogin(_ options: ClientOptions, name: String, context: ClientContext) async throws -> Outcome {
        let files = try appFiles(options, context: context)
        let session = try session(options, context: context)
        let web = WebClient(transport: try context.userTransport(session.address, session.insecure, session.key), address: session.address)
        let issued = try await web.appLogin(name: name)
        try context.store.makePrivateDirectory(files.directory)
        try SecureFile.write(Data(issued.certificatePEM.utf8), to: files.certificate(name), mode: 0o600)
        return Outcome(output: "Logged into app \(name).\nExample curl command:\n  \(try appConnection(files, name: name).curl)\n")
    }

    /// `tsh apps logout [NAME]`: removes one app's certificate, or all of them.
    public static func appLogout(_ options: ClientOptions, name: String?, context: ClientContext) throws -> Outcome {
        let files = try appFiles(options, context: context)
        let names = name.map { [$0] } ?? files.loggedIn()
        guard !names.isEmpty else { return Outcome(output: "Not logged into any app.\n") }
        var lines = ""
        for app in names {
            let url = files.certificate(app)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw TeleportError.notFound("not logged into app \(app) (tsh apps login \(app))")
            }
            try FileManager.default.removeItem(at: url)
            lines += "Logged out of app \(app).\n"
        }
        return Outcome(output: lines)
    }

    /// How to reach one logged-in app through the proxy.
    struct AppConnection {
        var name: String
        var uri: String
        var ca: String
        var certificate: String
        var key: String
        var insecure: Bool

        /// The seed-era curl line.
        var curl: String {
            (["curl"] + (insecure ? ["--insecure"] : ["--cacert", ca]) + ["--cert", certificate, "--key", key, uri]).map(ShellQuote.word).joined(separator: " ")
        }
    }

    static func appConnection(_ files: DatabaseFiles, name: String) throws -> AppConnection {
        let url = files.certificate(name)
        guard let pem = try? String(contentsOf: url, encoding: .utf8) else {
            throw TeleportError.notFound("not logged into app \(name): tsh apps login \(name)")
        }
        let identity = try X509Identity(certificate: try Certificate.fromPEM(pem))
        guard let route = identity.routeToApp, !route.publicAddr.isEmpty else {
            throw TeleportError.badParameter("\(url.path) carries no app route: tsh apps login \(name) again")
        }
        let port = files.profile.webProxyAddress.port
        let host = route.publicAddr.contains(":") && !route.publicAddr.hasPrefix("[") ? "[\(route.publicAddr)]" : route.publicAddr
        return AppConnection(
            name: name, uri: "https://\(host)\(port == 443 ? "" : ":\(port)")/", ca: files.paths.caCertificates.path, certificate: url.path,
            key: files.paths.tlsKey.path, insecure: files.profile.insecure)
    }

    /// The forms of `tsh apps config --format`.
    public enum AppConfigFormat: String, CaseIterable, Sendable {
        case text, uri, ca, cert, key, curl
    }

    /// `tsh apps config [NAME] [--format uri|ca|cert|key|curl]`: the app's address, the files and a curl line.
    public static func appConfig(_ options: ClientOptions, name: String?, format: AppConfigFormat, context: ClientContext) throws -> Outcome {
        let files = try appFiles(options, context: context)
        let chosen: String
        if let name {
            chosen = name
        } else {
            let all = files.loggedIn()
            guard all.count == 1 else {
                throw TeleportError.badParameter(
                    all.isEmpty ? "not logged into any app: tsh apps login NAME" : "logged into several apps (\(all.joined(separator: ", "))): name one")
            }
            chosen = all[0]
        }
        let connection = try appConnection(files, name: chosen)
        switch format {
        case .uri: return Outcome(output: connection.uri + "\n")
        case .ca: return Outcome(output: connection.ca + "\n")
        case .cert: return Outcome(output: connection.certificate + "\n")
        case .key: return Outcome(output: connection.key + "\n")
        case .curl: return Outcome(output: connection.curl + "\n")
        case .text:
            let rows = [("Name", connection.name), ("URI", connection.uri), ("CA", connection.ca), ("Cert", connection.certificate), ("Key", connection.key)]
            let text = rows.map { "\(($0.0 + ":").padding(toLength: 6, withPad: " ", startingAt: 0)) \($0.1)" }.joined(separator: "\n")
            return Outcome(output: text + "\n")
        }
    }
}
