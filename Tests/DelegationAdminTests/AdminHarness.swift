@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import Foundation
import TestSupport

/// Runs the built `delegation-admin` as an operator would, against one database file.
struct Admin {
    static let binary = productPath("delegation-admin")
    let path: String

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        /// stdout parsed as one JSON document (nil when it is not exactly one).
        var json: JSONValue? { try? JSONValue.parse(stdout) }
        var error: String? { json?["error"]?.stringValue }
    }

    func callAsFunction(_ arguments: String..., environment: [String: String] = [:]) async throws -> Result {
        try await run(arguments, environment: environment)
    }

    func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> Result {
        // The subcommand first, then the database: the order operators type.
        let child = try Child(Self.binary, arguments + ["--db", path], environment: environment)
        let result = await child.finish(within: .seconds(60))
        return Result(status: result.status, stdout: result.stdout, stderr: result.stderr)
    }
}

/// A database holding one delegation in each state, made through the store as a worker would.
struct Fixture {
    let directory = TemporaryDirectory()
    let path: String
    let store: DelegationStore
    var ids: [String: String] = [:]

    init() async throws {
        store = try makeStore(directory)
        path = directory.file("delegations.db")
    }

    /// Enqueues a delegation and drives it to `status` through the worker's own operations.
    @discardableResult
    mutating func make(
        _ name: String, workspace: String = "ws-peer", task: String? = nil, _ status: DelegationStatus,
        detail: String = "peer said no"
    ) async throws -> String {
        let answer = try await store.delegate(workspaceID: workspace, task: task ?? "task \(name)")
        let id = answer["task_id"]!.stringValue!
        ids[name] = id
        guard status != .pending else { return id }
        if status == .cancelled {
            try await store.cancel(id: id, reason: "not needed")
            return id
        }
        _ = try await claim(id)
        switch status {
        case .completed: try await store.complete(id: id, worker: "w-test", result: "result of \(name)")
        case .failed: try await store.fail(id: id, worker: "w-test", error: detail)
        case .queued: try await store.markQueued(id: id, worker: "w-test", detail: "queued by the proxy")
        default: break
        }
        return id
    }

    /// Claims rows until `id` is among them (other pending rows claimed on the way are released).
    private func claim(_ id: String) async throws -> Bool {
        for _ in 0..<100 {
            let claimed = try await store.claim(worker: "w-test", limit: 100, lease: .seconds(300))
            if claimed.contains(where: { $0.id == id }) {
                for other in claimed where other.id != id {
                    try await store.scheduleRetry(id: other.id, worker: "w-test", error: "fixture", after: .zero)
                }
                return true
            }
        }
        return false
    }

    /// Marks every mirror call delivered, as a worker would once the platform accepted them.
    func deliverOutbox() {
        RawConnection(path).run("UPDATE platform_outbox SET delivered_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE delivered_at IS NULL")
    }
}
