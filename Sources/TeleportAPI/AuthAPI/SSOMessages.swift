public import Foundation

extension AuthAPI {
    /// The single sign-on connector kinds.
    public enum SSOKind: String, Codable, Sendable, CaseIterable {
        /// OpenID Connect (``OIDCConnector``).
        case oidc
        /// GitHub OAuth 2.0 (``GitHubConnector``).
        case github
    }

    /// Who asked for a single sign-on login: `tsh` (the result goes, sealed, to its own loopback
    /// listener) or a browser (the result is a web session).
    public enum SSOMode: String, Codable, Sendable {
        /// `tsh login --auth=NAME`.
        case console
        /// The web UI's connector buttons.
        case web
    }

    /// `POST /v1/sso/requests` (Proxy): starts a login; the auth service stores the request
    /// (state, nonce, PKCE verifier, keys, where to send the result) for 10 minutes and answers
    /// the provider's authorization URL.
    public struct CreateSSORequest: Codable, Sendable, Equatable {
        /// `oidc` or `github`.
        public var kind: SSOKind
        /// The connector's name.
        public var connectorID: String
        /// `console` or `web`.
        public var mode: SSOMode
        /// console: `tsh`'s SSH public key (an authorized_keys line).
        public var sshPublicKey: String?
        /// console: `tsh`'s TLS public key (PEM).
        public var tlsPublicKeyPEM: String?
        /// console: proof of possession of both keys (``KeyProof``, purpose `teleport sso login v1`,
        /// user = the connector's name).
        public var keyProof: KeyProof?
        /// console: the certificate lifetime asked for (0: the roles' maximum).
        public var ttlSeconds: Double?
        /// console: `http://127.0.0.1:PORT/...?secret=KEY` (tsh's one-time listener).
        public var clientRedirectURL: String?
        /// web: the same-origin path to return to (`/web`).
        public var redirectURL: String?
        /// The client's address, for the audit log (set by the proxy).
        public var clientAddress: String?

        enum CodingKeys: String, CodingKey {
            case kind, mode
            case connectorID = "connector_id"
            case sshPublicKey = "ssh_public_key"
            case tlsPublicKeyPEM = "tls_public_key"
            case keyProof = "key_proof"
            case ttlSeconds = "ttl_seconds"
            case clientRedirectURL = "client_redirect_url"
            case redirectURL = "redirect_url"
            case clientAddress = "client_address"
        }

        /// Creates a request.
        public init(
            kind: SSOKind, connectorID: String, mode: SSOMode, sshPublicKey: String? = nil, tlsPublicKeyPEM: String? = nil,
            keyProof: KeyProof? = nil, ttlSeconds: Double? = nil, clientRedirectURL: String? = nil, redirectURL: String? = nil,
            clientAddress: String? = nil
        ) {
            self.kind = kind
            self.connectorID = connectorID
            self.mode = mode
            self.sshPublicKey = sshPublicKey
            self.tlsPublicKeyPEM = tlsPublicKeyPEM
            self.keyProof = keyProof
            self.ttlSeconds = ttlSeconds
            self.clientRedirectURL = clientRedirectURL
            self.redirectURL = redirectURL
            self.clientAddress = clientAddress
        }
    }

    /// The answer to ``CreateSSORequest``: where to send the browser.
    public struct SSORequestCreated: Codable, Sendable, Equatable {
        /// The provider's authorization URL (with state, nonce, PKCE challenge).
        public var redirectURL: String

        enum CodingKeys: String, CodingKey {
            case redirectURL = "redirect_url"
        }

        /// Creates an answer.
        public init(redirectURL: String) { self.redirectURL = redirectURL }
    }

    /// `POST /v1/sso/callback` (Proxy): the provider sent the browser back with a code (or an
    /// error) and the state.
    public struct SSOCallbackRequest: Codable, Sendable, Equatable {
        /// `oidc` or `github` (the callback route's kind).
        public var kind: SSOKind
        /// The authorization code.
        public var code: String?
        /// The state (the login request's id).
        public var state: String
        /// The provider's `error`, when it refused.
        public var error: String?
        /// The provider's `error_description`.
        public var errorDescription: String?
        /// The browser's address, for the audit log (set by the proxy).
        public var clientAddress: String?

        enum CodingKeys: String, CodingKey {
            case kind, code, state, error
            case errorDescription = "error_description"
            case clientAddress = "client_address"
        }

        /// Creates a request.
        public init(
            kind: SSOKind, code: String?, state: String, error: String? = nil, errorDescription: String? = nil, clientAddress: String? = nil
        ) {
            self.kind = kind
            self.code = code
            self.state = state
            self.error = error
            self.errorDescription = errorDescription
            self.clientAddress = clientAddress
        }
    }

    /// The result of a completed callback.
    public struct SSOCallbackResult: Codable, Sendable, Equatable {
        /// `console` or `web`.
        public var mode: SSOMode
        /// The user logged in.
        public var username: String
        /// console: where to send the browser: tsh's listener with `response=` (the sealed
        /// ``LoginResponse``) in place of the secret.
        public var clientRedirectURL: String?
        /// web: the new web session (with its id).
        public var webSession: WebSessionInfo?
        /// web: the same-origin path to return to.
        public var redirectURL: String?

        enum CodingKeys: String, CodingKey {
            case mode, username
            case clientRedirectURL = "client_redirect_url"
            case webSession = "web_session"
            case redirectURL = "redirect_url"
        }

        /// Creates a result.
        public init(
            mode: SSOMode, username: String, clientRedirectURL: String? = nil, webSession: WebSessionInfo? = nil, redirectURL: String? = nil
        ) {
            self.mode = mode
            self.username = username
            self.clientRedirectURL = clientRedirectURL
            self.webSession = webSession
            self.redirectURL = redirectURL
        }
    }

    /// One connector as `/webapi/ping` lists it.
    public struct ConnectorSummary: Codable, Sendable, Equatable {
        /// The connector's name (`tsh login --auth=NAME`).
        public var name: String
        /// `oidc` or `github`.
        public var kind: String
        /// The button's text.
        public var display: String

        /// Creates a summary.
        public init(name: String, kind: String, display: String) {
            self.name = name
            self.kind = kind
            self.display = display
        }
    }

    /// `GET /v1/sso/settings` (Proxy): how users log in, for `/webapi/ping` and the login page.
    public struct AuthPreference: Codable, Sendable, Equatable {
        /// `local`, `oidc` or `github` (`auth_service.authentication.type`).
        public var type: String
        /// The default connector for `tsh login` (`connector_name`).
        public var connectorName: String?
        /// Whether password logins are allowed (`local_auth`).
        public var localAuth: Bool
        /// `otp` or `off`.
        public var secondFactor: String
        /// Every connector.
        public var connectors: [ConnectorSummary]

        enum CodingKeys: String, CodingKey {
            case type, connectors
            case connectorName = "connector_name"
            case localAuth = "local_auth"
            case secondFactor = "second_factor"
        }

        /// Creates a preference.
        public init(type: String, connectorName: String?, localAuth: Bool, secondFactor: String, connectors: [ConnectorSummary]) {
            self.type = type
            self.connectorName = connectorName
            self.localAuth = localAuth
            self.secondFactor = secondFactor
            self.connectors = connectors
        }
    }
}

extension WebAPI {
    /// `POST /webapi/oidc/login/console` and `POST /webapi/github/login/console`: `tsh login
    /// --auth=NAME` asks where to send the browser. The keys are proved as for `/webapi/ssh/certs`,
    /// with the purpose `teleport sso login v1` and the connector's name as the user.
    public struct SSOConsoleLoginRequest: Codable, Sendable, Equatable {
        /// The connector's name.
        public var connectorID: String
        /// tsh's one-time listener with its secret: `http://127.0.0.1:PORT/callback?secret=KEY`.
        public var clientRedirectURL: String
        /// The SSH public key (authorized_keys line).
        public var sshPublicKey: String
        /// The TLS public key (PEM).
        public var tlsPublicKeyPEM: String
        /// Proof of possession of both keys.
        public var keyProof: AuthAPI.KeyProof?
        /// The certificate lifetime asked for, in seconds (0: the roles' maximum).
        public var ttlSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case connectorID = "connector_id"
            case clientRedirectURL = "client_redirect_url"
            case sshPublicKey = "ssh_public_key"
            case tlsPublicKeyPEM = "tls_public_key"
            case keyProof = "key_proof"
            case ttlSeconds = "ttl_seconds"
        }

        /// Creates a request.
        public init(
            connectorID: String, clientRedirectURL: String, sshPublicKey: String, tlsPublicKeyPEM: String, keyProof: AuthAPI.KeyProof?,
            ttlSeconds: Double?
        ) {
            self.connectorID = connectorID
            self.clientRedirectURL = clientRedirectURL
            self.sshPublicKey = sshPublicKey
            self.tlsPublicKeyPEM = tlsPublicKeyPEM
            self.keyProof = keyProof
            self.ttlSeconds = ttlSeconds
        }
    }
}
