import Foundation
import TeleportAPI
import TeleportTestSupport
import Testing

/// The web UI's Management and Account APIs against a real cluster, driven with the real `curl`:
/// RBAC decided by the auth service for the signed-in user, CSRF on every change, role edits that
/// never overwrite a concurrent change, the join line that really joins a node, and a password
/// change that `tsh login` sees.
@Suite("web management and account (curl against a real cluster)", .serialized)
struct WebManagementTests {
    /// Signs `name` up and gives it `roles` (tctl users update), returning its code source.
    static func user(_ cluster: ClusterFixture, _ name: String, roles: String? = nil) async throws -> TSHCodes {
        let link = try await SignupHelper.addUser(cluster, name: name, logins: "\(name),root")
        let enrolled = try await SignupHelper.enrol(WebDriver(cluster: cluster), link, password: WebSessionTests.password)
        if let roles {
            let updated = try await cluster.tctl(["users", "update", name, "--set-roles=\(roles)"])
            try #require(updated.exitCode == 0, "\(updated)")
        }
        return TSHCodes(secret: enrolled.secret, usedAt: enrolled.time)
    }

    /// Logs `name` in to the web UI: the client (cookie jar) and the session's CSRF token.
    static func signIn(_ cluster: ClusterFixture, _ name: String, codes: inout TSHCodes, password: String = WebSessionTests.password)
        async throws -> (client: WebClient, csrf: String)
    {
        let client = WebClient(cluster: cluster)
        let login = try await client.send(
            "POST", "/webapi/sessions", json: ["user": name, "password": password, "otp_code": try await codes.next()])
        try #require(login.status == 200, "\(login)")
        let info = try ResourceCodec.jsonDecoder().decode(AuthAPI.WebSessionInfo.self, from: Data(login.body.utf8))
        return (client, info.csrfToken)
    }

    static func json(_ reply: WebReply) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any], "\(reply)")
    }

    static func message(_ reply: WebReply) -> String {
        ((try? json(reply))?["error"] as? [String: Any])?["message"] as? String ?? ""
    }

    @Test("users, roles, locks and join tokens: RBAC as tctl, CSRF checked, stale role edits refused, the join line works")
    func management() async throws {
        try await withCluster(try ClusterFixture(clusterName: "manage.example")) { cluster in
            try await cluster.start()
            var adminCodes = try await Self.user(cluster, "ada", roles: "access,editor")
            var plainCodes = try await Self.user(cluster, "pat")
            let (admin, adminCSRF) = try await Self.signIn(cluster, "ada", codes: &adminCodes)
            let (plain, plainCSRF) = try await Self.signIn(cluster, "pat", codes: &plainCodes)
            let origin = ["Origin": "https://127.0.0.1:\(cluster.webPort)"]

            // The page: for anyone signed in (what they may do is the API's answer), no inline script.
            let page = try await admin.send("GET", "/web/manage")
            #expect(page.status == 200 && page.body.contains("<script src=\"/web/js/manage.js\" defer></script>"), "\(page)")
            #expect(!page.body.contains("<script>") && !page.body.contains("style=\""), "\(page.body)")
            WebSessionTests.expectSecurityHeaders(page)

            // A user without rules for users: 403 with the auth service's sentence; nothing created.
            let newUser = ["name": "newbie", "roles": "access", "logins": "newbie"]
            let refused = try await plain.send("POST", "/webapi/manage/users", json: newUser, headers: ["X-CSRF-Token": plainCSRF].merging(origin) { a, _ in a })
            #expect(refused.status == 403, "\(refused)")
            #expect(Self.message(refused).contains("pat may not create user resources"), "\(refused)")
            let plainList = try await plain.send("GET", "/webapi/manage/users")
            #expect(plainList.status == 403 && Self.message(plainList).contains("may not list user"), "\(plainList)")

            // CSRF: none, or another session's token → 403; nothing created.
            let noToken = try await admin.send("POST", "/webapi/manage/users", json: newUser)
            #expect(noToken.status == 403 && Self.message(noToken).contains("CSRF"), "\(noToken)")
            let foreignToken = try await admin.send("POST", "/webapi/manage/users", json: newUser, headers: ["X-CSRF-Token": plainCSRF])
            #expect(foreignToken.status == 403 && Self.message(foreignToken).contains("CSRF"), "\(foreignToken)")
            for path in ["/webapi/manage/tokens", "/webapi/manage/locks"] {
                let unsigned = try await admin.send("POST", path, json: ["roles": "node", "user": "pat"])
                #expect(unsigned.status == 403, "\(path): \(unsigned)")
            }
            let users = try await admin.send("GET", "/webapi/manage/users")
            #expect(users.status == 200 && users.body.contains("\"ada\"") && !users.body.contains("newbie"), "\(users)")

            // Create: the invite link `tctl users add` prints.
            let csrf = ["X-CSRF-Token": adminCSRF]
            let created = try await admin.send("POST", "/webapi/manage/users", json: newUser, headers: csrf)
            #expect(created.status == 200, "\(created)")
            let url = try #require(try Self.json(created)["url"] as? String, "\(created)")
            #expect(url.range(of: #"^https://[^/\s]+/web/newuser/[0-9a-f]+$"#, options: .regularExpression) != nil, "\(url)")
            let viaTctl = try await cluster.tctl(["users", "add", "tina"])
            let tctlHost = viaTctl.stdout.range(of: #"https://[^/\s]+/web/newuser/"#, options: .regularExpression).map { String(viaTctl.stdout[$0]) }
            #expect(tctlHost != nil && url.hasPrefix(tctlHost ?? "-"), "the same link as tctl users add: \(url) vs \(viaTctl.stdout)")
            let invitePath = try #require(url.range(of: "/web/newuser/").map { String(url[$0.lowerBound...]) })
            let signup = try await WebDriver(cluster: cluster).request(invitePath)
            #expect(signup.status == 200, "the invite link opens the signup page: \(signup)")
            // Edit roles, reset (a new link), delete.
            let edited = try await admin.send("PUT", "/webapi/manage/users/newbie", json: ["roles": "access,auditor"], headers: csrf)
            #expect(edited.status == 200, "\(edited)")
            let afterEdit = try await cluster.tctl(["users", "ls"])
            #expect(afterEdit.stdout.split(separator: "\n").contains { $0.contains("newbie") && $0.contains("access,auditor") }, "\(afterEdit)")
            let badRole = try await admin.send("PUT", "/webapi/manage/users/newbie", json: ["roles": "no-such-role"], headers: csrf)
            #expect(badRole.status == 400 || badRole.status == 404, "\(badRole)")
            #expect(!Self.message(badRole).isEmpty, "\(badRole)")
            let reset = try await admin.send("POST", "/webapi/manage/users/newbie/reset", headers: csrf)
            #expect(reset.status == 200 && reset.body.contains("/web/reset/"), "\(reset)")
            let deleted = try await admin.send("DELETE", "/webapi/manage/users/newbie", headers: csrf)
            #expect(deleted.status == 200, "\(deleted)")
            #expect(!(try await cluster.tctl(["users", "ls"])).stdout.contains("newbie"))

            // Roles: read with its revision, save, then a save from the stale revision → 409, nothing saved.
            let read = try await admin.send("GET", "/webapi/manage/roles/access")
            #expect(read.status == 200, "\(read)")
            let role = try Self.json(read)
            let yaml = try #require(role["yaml"] as? String)
            let revision = try #require(role["revision"] as? String)
            #expect(yaml.contains("max_session_ttl: 12h0m0s") && !yaml.contains("revision"), "\(yaml)")
            let first = try await admin.send(
                "PUT", "/webapi/manage/roles/access",
                json: ["yaml": yaml.replacingOccurrences(of: "12h0m0s", with: "10h0m0s"), "revision": revision], headers: csrf)
            #expect(first.status == 200, "\(first)")
            let stale = try await admin.send(
                "PUT", "/webapi/manage/roles/access",
                json: ["yaml": yaml.replacingOccurrences(of: "12h0m0s", with: "11h0m0s"), "revision": revision], headers: csrf)
            #expect(stale.status == 409, "\(stale)")
            #expect(Self.message(stale).contains("changed by someone else") && Self.message(stale).contains("nothing was saved"), "\(stale)")
            let stored = try await cluster.tctl(["get", "role/access"])
            #expect(stored.stdout.contains("10h0m0s") && !stored.stdout.contains("11h0m0s"), "\(stored)")
            // Invalid YAML: 400 naming the problem, nothing saved.
            let current = try #require(try Self.json(try await admin.send("GET", "/webapi/manage/roles/access"))["revision"] as? String)
            let broken = try await admin.send(
                "PUT", "/webapi/manage/roles/access", json: ["yaml": "kind: role\nmetadata: [unclosed\n", "revision": current], headers: csrf)
            #expect(broken.status == 400 && !Self.message(broken).isEmpty, "\(broken)")
            print("WebManagementTests: invalid YAML answer: \(Self.message(broken))")
            let wrongField = try await admin.send(
                "PUT", "/webapi/manage/roles/access",
                json: ["yaml": yaml.replacingOccurrences(of: "max_session_ttl: 12h0m0s", with: "max_session_ttl: forever"), "revision": current],
                headers: csrf)
            #expect(wrongField.status == 400, "\(wrongField)")
            #expect(Self.message(wrongField).contains("max_session_ttl"), "the message names the field: \(wrongField)")
            #expect((try await cluster.tctl(["get", "role/access"])).stdout.contains("10h0m0s"), "nothing saved")
            // A user without rules for roles cannot read or save one.
            let plainRole = try await plain.send("GET", "/webapi/manage/roles/access")
            #expect(plainRole.status == 403, "\(plainRole)")

            // Locks: create, listed, delete.
            let lock = try await admin.send(
                "POST", "/webapi/manage/locks", json: ["user": "pat", "message": "security review", "ttl": "1h"], headers: csrf)
            #expect(lock.status == 200, "\(lock)")
            let lockName = try #require(try Self.json(lock)["name"] as? String)
            let locks = try await admin.send("GET", "/webapi/manage/locks")
            #expect(locks.body.contains("user=pat") && locks.body.contains("security review"), "\(locks)")
            let emptyLock = try await admin.send("POST", "/webapi/manage/locks", json: ["message": "nobody"], headers: csrf)
            #expect(emptyLock.status == 400, "\(emptyLock)")
            let unlocked = try await admin.send("DELETE", "/webapi/manage/locks/\(lockName)", headers: csrf)
            #expect(unlocked.status == 200, "\(unlocked)")
            #expect(!(try await admin.send("GET", "/webapi/manage/locks")).body.contains("user=pat"))

            // Join tokens: the `teleport start` line joins a node when pasted into a shell.
            let token = try await admin.send("POST", "/webapi/manage/tokens", json: ["roles": "node", "ttl": "10m"], headers: csrf)
            #expect(token.status == 200, "\(token)")
            let command = try #require(try Self.json(token)["command"] as? String, "\(token)")
            #expect(command.hasPrefix("teleport start --roles=node --token="), "\(command)")
            #expect(command.contains("--ca-pin=sha256:") && command.contains("--auth-server="), "\(command)")
            let status = try await cluster.tctl(["status"])
            let pin = command.range(of: #"sha256:[0-9a-f]{64}"#, options: .regularExpression).map { String(command[$0]) } ?? "-"
            #expect(status.stdout.contains(pin), "the cluster's pin: \(command)")
            let tokens = try await admin.send("GET", "/webapi/manage/tokens")
            #expect(tokens.status == 200 && (tokens.body.contains("\"node\"") || tokens.body.contains("\"Node\"")), "\(tokens)")
            let badTTL = try await admin.send("POST", "/webapi/manage/tokens", json: ["roles": "node", "ttl": "forever"], headers: csrf)
            #expect(badTTL.status == 400, "\(badTTL)")

            let directory = try TestSupport.makeTemporaryDirectory(prefix: "web-join")
            defer { try? FileManager.default.removeItem(at: directory) }
            let teleport = try ClusterFixture.binary("teleport")
            let extra = try TestSupport.nodeListenConfig() + [
                "--data-dir", directory.appendingPathComponent("data").path, "--nodename", "webjoined", "--listen-ip", "127.0.0.1",
            ]
            let script = "teleport() { exec \(ShellQuote.word(teleport)) \"$@\"; }; \(command) " + extra.map(ShellQuote.word).joined(separator: " ")
            let pid = try TestSupport.spawnDaemon("/bin/sh", ["-c", script], logPath: directory.appendingPathComponent("node.log").path)
            var joined = false
            for _ in 0..<300 where !joined {
                joined = try await cluster.tctl(["nodes", "ls"]).stdout.contains("webjoined")
                if !joined { try await Task.sleep(for: .milliseconds(100)) }
            }
            await TestSupport.stopDaemon(pid)
            #expect(joined, "the pasted line joined a node:\n\((try? String(contentsOf: directory.appendingPathComponent("node.log"), encoding: .utf8)) ?? "")")
            let plainTokens = try await plain.send("GET", "/webapi/manage/tokens")
            #expect(plainTokens.status == 403, "\(plainTokens)")
        }
    }

    @Test("the account page changes the password (wrong proof counts toward the lockout, audited); tsh login sees the new one")
    func changePassword() async throws {
        let tsh = try TSHRunner()
        defer { tsh.cleanUp() }
        try await withCluster(try ClusterFixture(clusterName: "account.example")) { cluster in
            try await cluster.start()
            var codes = try await Self.user(cluster, "joe")
            let (client, csrf) = try await Self.signIn(cluster, "joe", codes: &codes)
            let page = try await client.send("GET", "/web/account")
            #expect(page.status == 200 && page.body.contains("/web/js/account.js") && page.body.contains("for=\"pw-current\""), "\(page)")
            let device = try await client.send("GET", "/webapi/account/totp")
            #expect(device.status == 200 && device.body.contains("\"enrolled\":true") && device.body.contains("\"added\":\"20"), "\(device)")

            let newPassword = "a brand new passphrase 42"
            func change(_ current: String, _ code: String, _ new: String, _ confirm: String, headers: [String: String]) async throws -> WebReply {
                try await client.send(
                    "POST", "/webapi/account/password",
                    json: ["current_password": current, "otp_code": code, "new_password": new, "new_password_confirm": confirm], headers: headers)
            }
            let noCSRF = try await change(WebSessionTests.password, "000000", newPassword, newPassword, headers: [:])
            #expect(noCSRF.status == 403, "\(noCSRF)")
            let mismatch = try await change(WebSessionTests.password, "000000", newPassword, newPassword + "x", headers: ["X-CSRF-Token": csrf])
            #expect(mismatch.status == 400 && Self.message(mismatch).contains("do not match"), "\(mismatch)")
            let weak = try await change(WebSessionTests.password, "000000", "short", "short", headers: ["X-CSRF-Token": csrf])
            #expect(weak.status == 400 && Self.message(weak).contains("too short"), "\(weak)")
            let wrong = try await change("not my password at all", try await codes.next(), newPassword, newPassword, headers: ["X-CSRF-Token": csrf])
            #expect(wrong.status == 403 && Self.message(wrong).contains("current password or the one-time code is wrong"), "\(wrong)")
            let changed = try await change(WebSessionTests.password, try await codes.next(), newPassword, newPassword, headers: ["X-CSRF-Token": csrf])
            #expect(changed.status == 200, "\(changed)")

            let audit = try SignupHelper.auditLog(cluster)
            #expect(audit.contains("\"T1005W\""), "the refused change is audited: \(audit.suffix(3000))")
            #expect(audit.split(separator: "\n").contains { $0.contains("\"T1005I\"") && $0.contains("\"change\"") }, "\(audit.suffix(3000))")

            let proxy = "127.0.0.1:\(cluster.webPort)"
            let old = try await TSHLoginTests.login(
                tsh, ["--proxy=\(proxy)", "--user=joe", "--insecure"], password: WebSessionTests.password, code: try await codes.next())
            #expect(old.status != 0, "the old password no longer works: \(old.transcript)")
            let new = try await TSHLoginTests.login(
                tsh, ["--proxy=\(proxy)", "--user=joe", "--insecure"], password: newPassword, code: try await codes.next())
            #expect(new.status == 0, "tsh login with the new password: \(new.transcript)\n\(cluster.log.suffix(3000))")
        }
    }

    @Test("five wrong current passwords on the account page lock the account, as five failed logins do")
    func accountLockout() async throws {
        try await withCluster(try ClusterFixture(clusterName: "accountlock.example")) { cluster in
            try await cluster.start()
            var codes = try await Self.user(cluster, "kim")
            let (client, csrf) = try await Self.signIn(cluster, "kim", codes: &codes)
            for attempt in 1...5 {
                let wrong = try await client.send(
                    "POST", "/webapi/account/password",
                    json: ["current_password": "wrong password \(attempt)", "otp_code": "000000", "new_password": "another passphrase 9",
                           "new_password_confirm": "another passphrase 9"],
                    headers: ["X-CSRF-Token": csrf])
                #expect(wrong.status == 403, "attempt \(attempt): \(wrong)")
            }
            let locked = try await WebClient(cluster: cluster).send(
                "POST", "/webapi/sessions", json: ["user": "kim", "password": WebSessionTests.password, "otp_code": try await codes.next()])
            #expect(locked.status == 401, "the right password no longer logs in: \(locked)")
            #expect(try SignupHelper.auditLog(cluster).contains("\"user.locked\""))
        }
    }

    @Test("replace the authenticator: current password + code, a new secret, confirmed with its code; the old secret stops working")
    func replaceTOTP() async throws {
        try await withCluster(try ClusterFixture(clusterName: "accounttotp.example")) { cluster in
            try await cluster.start()
            var codes = try await Self.user(cluster, "lee")
            let (client, csrf) = try await Self.signIn(cluster, "lee", codes: &codes)
            let headers = ["X-CSRF-Token": csrf]
            let begin = try await client.send(
                "POST", "/webapi/account/totp/begin", json: ["current_password": WebSessionTests.password, "otp_code": try await codes.next()],
                headers: headers)
            #expect(begin.status == 200, "\(begin)")
            let secret = try #require(try Self.json(begin)["secret"] as? String, "\(begin)")
            let uri = try #require(try Self.json(begin)["uri"] as? String)
            #expect(uri.hasPrefix("otpauth://totp/accounttotp.example:lee?secret=\(secret)"), "\(uri)")
            let wrong = try await client.send("POST", "/webapi/account/totp/confirm", json: ["otp_code": try await codes.next()], headers: headers)
            #expect(wrong.status == 400, "a code of the old secret does not confirm the new one: \(wrong)")
            var newCodes = TSHCodes(secret: secret, usedAt: Date().addingTimeInterval(-60))
            let confirmed = try await client.send("POST", "/webapi/account/totp/confirm", json: ["otp_code": try await newCodes.next()], headers: headers)
            #expect(confirmed.status == 200, "\(confirmed)")
            #expect(try SignupHelper.auditLog(cluster).contains("\"mfa.add\""))
            let oldLogin = try await WebClient(cluster: cluster).send(
                "POST", "/webapi/sessions", json: ["user": "lee", "password": WebSessionTests.password, "otp_code": try await codes.next()])
            #expect(oldLogin.status == 401, "\(oldLogin)")
            let newLogin = try await WebClient(cluster: cluster).send(
                "POST", "/webapi/sessions", json: ["user": "lee", "password": WebSessionTests.password, "otp_code": try await newCodes.next()])
            #expect(newLogin.status == 200, "\(newLogin)")
        }
    }
}
