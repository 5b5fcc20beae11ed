import TeleportKube
import TeleportWire
import Testing

/// Who a request goes to the API server as: the roles' kubernetes_users/kubernetes_groups, and
/// the client's own Impersonate-* headers only when the roles grant exactly those.
@Suite("Kubernetes impersonation")
struct KubeImpersonationTests {
    typealias H = HTTP1Head.Header

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var headers: [H]
        var users: [String]
        var groups: [String]
        var expected: KubeImpersonation.Decision?
        var refusalMentions: String = ""
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "groups only: the Teleport user in the granted groups", headers: [], users: [], groups: ["viewers"],
             expected: .impersonate(user: "alice", groups: ["viewers"])),
        Case(name: "one kubernetes_user is used", headers: [], users: ["dev"], groups: ["viewers", "devs"],
             expected: .impersonate(user: "dev", groups: ["viewers", "devs"])),
        Case(name: "nothing granted", headers: [], users: [], groups: [], refusalMentions: "grant no kubernetes_groups"),
        Case(name: "system:admin refused", headers: [H("Impersonate-User", "system:admin")], users: [], groups: ["viewers"],
             refusalMentions: "system:admin"),
        Case(name: "a granted user asked for", headers: [H("impersonate-user", "dev")], users: ["dev", "ops"], groups: ["viewers"],
             expected: .impersonate(user: "dev", groups: ["viewers"])),
        Case(name: "several users and none chosen", headers: [], users: ["dev", "ops"], groups: [], refusalMentions: "--as"),
        Case(name: "a group not granted", headers: [H("Impersonate-Group", "system:masters")], users: [], groups: ["viewers"],
             refusalMentions: "system:masters"),
        Case(name: "a granted subset of groups", headers: [H("Impersonate-Group", "devs")], users: [], groups: ["viewers", "devs"],
             expected: .impersonate(user: "alice", groups: ["devs"])),
        Case(name: "Impersonate-Uid refused", headers: [H("Impersonate-Uid", "0")], users: [], groups: ["viewers"],
             refusalMentions: "Impersonate-Uid"),
        Case(name: "Impersonate-Extra refused", headers: [H("Impersonate-Extra-scopes", "x")], users: [], groups: ["viewers"],
             refusalMentions: "Impersonate-Extra"),
        Case(name: "two Impersonate-User headers", headers: [H("Impersonate-User", "alice"), H("Impersonate-User", "bob")], users: [],
             groups: ["viewers"], refusalMentions: "more than one"),
        Case(name: "the Teleport user itself when no users are named", headers: [H("Impersonate-User", "alice")], users: [],
             groups: ["viewers"], expected: .impersonate(user: "alice", groups: ["viewers"])),
    ]

    @Test(arguments: cases)
    func decides(_ c: Case) {
        let decision = KubeImpersonation.decide(headers: c.headers, teleportUser: "alice", users: c.users, groups: c.groups, cluster: "k1")
        if let expected = c.expected {
            #expect(decision == expected)
        } else if case .refuse(let reason) = decision {
            #expect(reason.contains(c.refusalMentions), "\(reason)")
        } else {
            Issue.record("expected a refusal, got \(decision)")
        }
    }

    static func head(_ target: String, _ headers: [H]) -> HTTP1Head {
        HTTP1Head(first: "GET", second: target, third: "HTTP/1.1", headers: headers)
    }

    static let goodUpgrade: [H] = [
        H("Connection", "Upgrade"), H("Upgrade", "websocket"), H("Sec-WebSocket-Version", "13"),
        H("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), H("Sec-WebSocket-Protocol", "v5.channel.k8s.io, v4.channel.k8s.io"),
    ]

    @Test func upgradeChecks() {
        let exec = "/api/v1/namespaces/default/pods/web-0/exec?command=sh&stdin=true&tty=true"
        let info = KubeRequestInfo(method: "GET", target: exec)
        #expect(KubeImpersonation.upgradeProblem(Self.head(exec, Self.goodUpgrade), info: info) == nil)
        func without(_ name: String, adding extra: [H] = []) -> HTTP1Head {
            Self.head(exec, Self.goodUpgrade.filter { $0.name != name } + extra)
        }
        #expect(KubeImpersonation.upgradeProblem(without("Sec-WebSocket-Protocol", adding: [H("Sec-WebSocket-Protocol", "chat")]), info: info) != nil)
        #expect(KubeImpersonation.upgradeProblem(without("Sec-WebSocket-Protocol"), info: info) != nil)
        #expect(KubeImpersonation.upgradeProblem(without("Sec-WebSocket-Key", adding: [H("Sec-WebSocket-Key", "short")]), info: info) != nil)
        #expect(KubeImpersonation.upgradeProblem(without("Sec-WebSocket-Version", adding: [H("Sec-WebSocket-Version", "8")]), info: info) != nil)
        #expect(KubeImpersonation.upgradeProblem(without("Upgrade", adding: [H("Upgrade", "h2c")]), info: info) != nil)
        #expect(KubeImpersonation.upgradeProblem(without("Connection"), info: info) != nil)
        let list = KubeRequestInfo(method: "GET", target: "/api/v1/namespaces/default/pods")
        #expect(KubeImpersonation.upgradeProblem(Self.head("/api/v1/namespaces/default/pods", Self.goodUpgrade), info: list) != nil)
    }

    @Test("SPDY/3.1 is accepted only for a port-forward POST naming portforward.k8s.io; exec over SPDY is refused")
    func spdyUpgrades() {
        let forward = "/api/v1/namespaces/default/pods/web-0/portforward"
        let spdy = [H("Upgrade", "SPDY/3.1"), H("Connection", "Upgrade"), H("X-Stream-Protocol-Version", "portforward.k8s.io")]
        func post(_ target: String, _ headers: [H], method: String = "POST") -> (HTTP1Head, KubeRequestInfo) {
            (HTTP1Head(first: method, second: target, third: "HTTP/1.1", headers: headers), KubeRequestInfo(method: method, target: target))
        }
        let good = post(forward, spdy)
        #expect(KubeImpersonation.upgradeProblem(good.0, info: good.1) == nil)
        let exec = post("/api/v1/namespaces/default/pods/web-0/exec?command=sh&tty=true", spdy)
        #expect(KubeImpersonation.upgradeProblem(exec.0, info: exec.1)?.contains("kubectl 1.30") == true)
        let get = post(forward, spdy, method: "GET")
        #expect(KubeImpersonation.upgradeProblem(get.0, info: get.1) != nil)
        let noVersion = post(forward, Array(spdy.dropLast()))
        #expect(KubeImpersonation.upgradeProblem(noVersion.0, info: noVersion.1)?.contains("X-Stream-Protocol-Version") == true)
        let noConnection = post(forward, [spdy[0], spdy[2]])
        #expect(KubeImpersonation.upgradeProblem(noConnection.0, info: noConnection.1) != nil)
    }

    @Test(arguments: [
        ("GET", "/api/v1/namespaces/default/pods", "list", "", "pods", "", "default", ""),
        ("GET", "/api/v1/namespaces/default/pods?watch=true&resourceVersion=1", "watch", "", "pods", "", "default", ""),
        ("GET", "/api/v1/namespaces/default/pods/web-0", "get", "", "pods", "", "default", "web-0"),
        ("GET", "/api/v1/namespaces/kube-system/pods/web-0/log?follow=true", "get", "", "pods", "log", "kube-system", "web-0"),
        ("POST", "/api/v1/namespaces/default/pods/web-0/exec?command=ls", "create", "", "pods", "exec", "default", "web-0"),
        ("DELETE", "/apis/apps/v1/namespaces/default/deployments/web", "delete", "apps", "deployments", "", "default", "web"),
        ("DELETE", "/apis/apps/v1/namespaces/default/deployments", "deletecollection", "apps", "deployments", "", "default", ""),
        ("GET", "/api/v1/nodes", "list", "", "nodes", "", "", ""),
        ("GET", "/api/v1/namespaces/default", "get", "", "namespaces", "", "default", "default"),
        ("GET", "/version", "get", "", "", "", "", ""),
        ("GET", "/apis", "get", "", "", "", "", ""),
    ])
    func requestInfo(
        _ method: String, _ target: String, _ verb: String, _ group: String, _ resource: String, _ sub: String, _ namespace: String, _ name: String
    ) {
        let info = KubeRequestInfo(method: method, target: target)
        #expect(info.verb == verb && info.apiGroup == group && info.resource == resource && info.subresource == sub, "\(info)")
        #expect(info.namespace == namespace && info.name == name, "\(info)")
    }
}
