import CSQLite
import DelegationFakes
@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import Foundation
import TestSupport
import Testing

/// The README's bad-input catalogue, process side: configuration, database files and CLI arguments,
/// through the built `delegation-worker` and `delegation-admin` as an operator runs them.
@Suite struct FaultCatalogueTests {
    let worker = productPath("delegation-worker")
    let admin = productPath("delegation-admin")

    struct ConfigCase: Sendable, CustomTestStringConvertible {
        var name: String
        var arguments: [String]
        var environment: [String: String] = [:]
        var message: String
        var testDescription: String { name }
    }

    static let configCases: [ConfigCase] = [
        ConfigCase(name: "C1 a platform URL that is not http(s)", arguments: ["--platform-url", "file:///etc/passwd"], message: "--platform-url"),
        ConfigCase(name: "C2 a platform URL that is not a URL", arguments: ["--platform-url", "not a url"], message: "--platform-url"),
        ConfigCase(name: "C3 negative concurrency", arguments: ["--concurrency", "-4"], message: "--concurrency"),
        ConfigCase(name: "C4 a negative retry delay", arguments: ["--retry-delay", "-5"], message: "--retry-delay"),
        ConfigCase(name: "C5 zero retry attempts", arguments: ["--retry-attempts", "0"], message: "--retry-attempts"),
        ConfigCase(name: "C6 a negative timeout", arguments: ["--timeout", "-1"], message: "--timeout"),
        ConfigCase(name: "C7 a zero lease", arguments: ["--lease", "0"], message: "--lease"),
        ConfigCase(name: "C8 a negative history limit", arguments: ["--history-limit", "-1"], message: "--history-limit"),
        ConfigCase(name: "C9 a number in the environment that is not one", arguments: [], environment: ["DELEGATION_TIMEOUT": "soon"], message: "DELEGATION_TIMEOUT"),
        ConfigCase(name: "C10 no workspace id", arguments: [], environment: ["WORKSPACE_ID": ""], message: "--workspace-id"),
    ]

    @Test(arguments: configCases)
    func invalidConfiguration(_ input: ConfigCase) async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("never.db")
        var arguments = ["--db", path, "--platform-url", "http://127.0.0.1:9"]
        if input.environment["WORKSPACE_ID"] == nil { arguments += ["--workspace-id", "ws-self"] }
        let child = try Child(worker, arguments + input.arguments, environment: input.environment)
        let result = await child.finish(within: .seconds(30))
        #expect(result.status != 0, "\(input.name)")
        #expect(result.stderr.contains(input.message), "\(input.name): \(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: path), "nothing was created before the configuration was valid")
    }

    @Test func workerRefusesAMissingDirectoryAFutureSchemaAndAFileThatIsNotSQLite() async throws {
        let directory = TemporaryDirectory()
        func start(_ path: String) async throws -> (Int32, String) {
            let child = try Child(worker, ["--db", path, "--workspace-id", "ws-self", "--platform-url", "http://127.0.0.1:9", "--exit-when-idle"])
            let result = await child.finish(within: .seconds(30))
            return (result.status, result.stderr)
        }
        let missing = try await start(directory.file("no/such/dir/q.db"))
        #expect(missing.0 != 0 && missing.1.contains("does not exist"), "\(missing.1)")

        let future = try await createDatabase(directory, name: "future.db")
        RawConnection(future).run("INSERT INTO schema_migrations (version, name, checksum) VALUES (99, '0099_future', 'x')")
        let refused = try await start(future)
        #expect(refused.0 != 0 && refused.1.contains("newer than this build knows"), "\(refused.1)")

        let text = directory.file("notes.db")
        try Data(String(repeating: "not a database ", count: 100).utf8).write(to: URL(fileURLWithPath: text))
        let garbage = try await start(text)
        #expect(garbage.0 != 0 && garbage.1.contains("not a SQLite database"), "\(garbage.1)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: text)).starts(with: Data("not a database".utf8)), "left untouched")
    }

    @Test func aCorruptPageIsFoundByCheckAndNamedOnRead() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        for index in 0..<400 { _ = try await store.delegate(workspaceID: "ws", task: String(repeating: "task \(index) ", count: 20)) }
        await store.close()
        let path = directory.file("delegations.db")
        RawConnection(path).run("PRAGMA wal_checkpoint(TRUNCATE)")
        // Scribble over a page in the middle of the file, as a failing disk would.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: size / 2 / 4096 * 4096)
        handle.write(Data((0..<4096).map { _ in UInt8.random(in: 0...255) }))
        try handle.close()

        let check = try Child(admin, ["check", "--json", "--db", path])
        let result = await check.finish()
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        let json = try? JSONValue.parse(result.stdout)
        let failing = json?["checks"]?.arrayValue?.filter { $0["ok"] == .bool(false) }.compactMap { $0["name"]?.stringValue } ?? []
        let problem = json?["error"]?.stringValue ?? ""
        #expect(failing.contains("integrity_check") || problem.contains("corrupt") || problem.contains("malformed"), "\(result.stdout)")

        let export = try Child(admin, ["export", "--json", "--db", path])
        let exported = await export.finish()
        if exported.status != 0 {
            let error = (try? JSONValue.parse(exported.stdout.split(separator: "\n").last.map(String.init) ?? ""))?["error"]?.stringValue ?? exported.stdout
            #expect(error.contains("corrupt") || error.contains("malformed"), "reading a bad page names it: \(error)")
        }
    }

    @Test func sqlMetacharactersInEveryTextOptionAreJustText() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("q.db")
        let nasty = #"x'); DROP TABLE delegations; -- "%_\ "#
        func run(_ arguments: [String]) async throws -> (Int32, JSONValue?) {
            let child = try Child(admin, arguments + ["--db", path, "--json"])
            let result = await child.finish()
            return (result.status, try? JSONValue.parse(result.stdout))
        }
        let delegated = try await run(["delegate", "--workspace", nasty, "--task", nasty])
        #expect(delegated.0 == 0)
        let id = try #require(delegated.1?["task_id"]?.stringValue)
        let byWorkspace = try await run(["list", "--workspace", nasty, "--search", nasty])
        #expect(byWorkspace.1?["count"] == .int(1))
        let events = try await run(["events", "--delegation", nasty])
        #expect(events.0 == 1 && events.1?["error"]?.stringValue == "No delegation found with task_id \(nasty)")
        let kinds = try await run(["events", "--kind", nasty, "--delegation", id])
        #expect(kinds.0 == 0 && kinds.1?["count"] == .int(0))
        let cancelled = try await run(["cancel", id, "--reason", nasty])
        #expect(cancelled.0 == 0)
        let shown = try await run(["show", id])
        #expect(shown.1?["delegation"]?["workspace_id"] == .string(nasty.trimmingCharacters(in: .whitespaces)), "stored trimmed, otherwise verbatim")
        #expect(shown.1?["delegation"]?["error"]?.stringValue?.hasSuffix(nasty) == true)
        let exported = try await run(["export", "--search", nasty, "--workspace", nasty])
        #expect(exported.1?["count"] == .int(1))
        #expect(RawConnection(path).value("SELECT count(*) FROM sqlite_master WHERE name = 'delegations'") == "1")
    }

    @Test func theTokenIsNeverLoggedEvenAtTrace() async throws {
        let secret = "s3cret-token-\(UUID().uuidString)"
        let platform = FakePlatform(workspaceID: "ws-self", token: secret)
        try await platform.start()
        let peer = FakePeer { _ in .completed("ok") }
        try await peer.start()
        platform.register("ws-peer", .url(peer.url))
        platform.fail([.record], with: 500)  // some failures, so error paths log too
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let id = try #require(try await store.delegate(workspaceID: "ws-peer", task: "t")["task_id"]?.stringValue)
        await store.close()
        Task {
            try? await Task.sleep(for: .seconds(1))
            platform.fail([.record], with: nil)
        }
        let child = try Child(worker, [
            "--db", directory.file("delegations.db"), "--platform-url", platform.baseURL, "--workspace-id", "ws-self",
            "--token", secret, "--log-level", "trace", "--exit-when-idle", "--retry-delay", "0.05",
        ])
        let result = await child.finish(within: .seconds(60))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stdout.contains(secret) && !result.stderr.contains(secret), "the token never appears in logs")
        #expect(result.stderr.contains("trace") || result.stderr.contains("debug") || !result.stderr.isEmpty, "trace logging was on")
        #expect(RawConnection(directory.file("delegations.db")).value("SELECT status FROM delegations WHERE id = ?", id) == "completed")
        await peer.stop()
        await platform.stop()
    }
}
