public import Foundation

/// A GitHub stand-in for tests (`Tests/fixtures/github_standin.py`): GitHub cannot be reached from the
/// test machines, so this implements the OAuth web flow (`/login/oauth/authorize` with a login form,
/// `/login/oauth/access_token`, single-use codes) and the API a `kind: github` connector reads (`/user`,
/// `/user/teams` with `slug` and `organization.login`) on 127.0.0.1, for the connector's `endpoint_url`
/// and `api_endpoint_url` (both ``url``; the API also answers under `/api/v3`).
public final class GitHubStandInFixture: @unchecked Sendable {
    /// An OAuth app registered with the stand-in.
    public struct Client: Sendable, Encodable {
        public var clientID: String
        public var clientSecret: String
        /// The callback URLs (GitHub also accepts a path below one).
        public var redirectURIs: [String]

        public init(id: String, secret: String, redirectURIs: [String]) {
            clientID = id
            clientSecret = secret
            self.redirectURIs = redirectURIs
        }

        enum CodingKeys: String, CodingKey { case clientID = "client_id", clientSecret = "client_secret", redirectURIs = "redirect_uris" }
    }

    /// A team membership: organization login and team slug.
    public struct Team: Sendable, Encodable {
        public var organization: String
        public var slug: String
        public var name: String

        public init(organization: String, slug: String, name: String? = nil) {
            self.organization = organization
            self.slug = slug
            self.name = name ?? slug
        }
    }

    /// A GitHub account that can sign in on the stand-in's form.
    public struct User: Sendable, Encodable {
        public var login: String
        public var password: String
        public var id: Int
        public var email: String?
        public var teams: [Team]

        public init(_ login: String, password: String, id: Int = 1, email: String? = nil, teams: [Team] = []) {
            self.login = login
            self.password = password
            self.id = id
            self.email = email
            self.teams = teams
        }
    }

    struct Config: Encodable {
        var clients: [Client]
        var users: [User]
    }

    /// The stand-in process.
    public let server: PythonFixtureServer

    private init(server: PythonFixtureServer) { self.server = server }

    /// `http://127.0.0.1:PORT`: the connector's `endpoint_url` and `api_endpoint_url`.
    public var url: String { server.url }
    /// Its port.
    public var port: UInt16 { server.port }
    /// Its output so far.
    public var log: String { server.log }

    /// Starts a stand-in with these OAuth apps and users.
    public static func start(clients: [Client], users: [User]) async throws -> GitHubStandInFixture {
        let config = try PythonFixtureServer.encode(Config(clients: clients, users: users))
        return GitHubStandInFixture(server: try await PythonFixtureServer.start(script: "github_standin.py", config: config, prefix: "github"))
    }

    /// Runs `body` with a fresh stand-in, stopped afterwards whether `body` succeeded or not.
    public static func with<T>(clients: [Client], users: [User], _ body: (GitHubStandInFixture) async throws -> T) async throws -> T {
        let standIn = try await start(clients: clients, users: users)
        do {
            let value = try await body(standIn)
            await standIn.stop()
            return value
        } catch {
            await standIn.stop()
            throw error
        }
    }

    /// Replaces the OAuth apps and users.
    public func configure(clients: [Client], users: [User]) async throws {
        let config = try PythonFixtureServer.encode(Config(clients: clients, users: users))
        try await server.admin("/admin/config", json: String(decoding: config, as: UTF8.self))
    }

    /// What the stand-in saw (authorize, login, token, API calls, refusals).
    public func events() async throws -> [[String: Any]] { try await server.events() }

    /// Stops the stand-in by PID.
    public func stop() async { await server.stop() }
}
