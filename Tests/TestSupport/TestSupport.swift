import CSQLite
@_exported import ChildProcess
import DelegationStore
import DelegationTool
import Foundation
import Logging

/// The suite runs its tests in parallel, each with databases, fake servers and pipes: about 2,300
/// descriptors open at the peak here, and many machines start processes with a soft limit of 1,024
/// (`pipe failed` then, mid-run). The first temporary directory or child raises this process's soft limit
/// to its hard limit (at most 65,536). Children (workers included) inherit the raised limit, so a worker
/// leaking descriptors would reach 1,024 unnoticed here; bench rows 4 and 6 print the worker's largest
/// descriptor count with 10,000 and 1,000 delegations in flight.
public enum DescriptorLimit {
    public static let current: Int = {
        var limit = rlimit()
        #if canImport(Darwin)
        let resource = RLIMIT_NOFILE
        #else
        let resource = Int32(RLIMIT_NOFILE.rawValue)
        #endif
        guard getrlimit(resource, &limit) == 0 else { return 1_024 }
        let wanted = min(limit.rlim_max, 65_536)
        if limit.rlim_cur < wanted {
            limit.rlim_cur = wanted
            _ = setrlimit(resource, &limit)
            _ = getrlimit(resource, &limit)
        }
        return Int(clamping: limit.rlim_cur)
    }()
}

/// A fresh directory under /tmp for one test's database files, removed when the test ends.
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init() {
        _ = DescriptorLimit.current
        let base = FileManager.default.temporaryDirectory.path + "/delegation-tests-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        path = base
    }

    public func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The directory holding the package's built products (the test bundle sits beside them).
public func productPath(_ name: String) -> String {
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for directory in [beside, beside.deletingLastPathComponent()] {
        let candidate = directory.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return packageRoot.appendingPathComponent(".build/debug/\(name)").path
}

/// A child process the test starts, as a user or a second worker would. Its stdout and stderr are
/// drained as they come (a thread each), so a chatty child never blocks on a full pipe.
public final class Child: @unchecked Sendable {
    public let process: SpawnedProcess
    private let lock = NSLock()
    private var output = Data()
    private var errors = Data()
    private var closedStreams = 0

    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        _ = DescriptorLimit.current
        guard let stdoutPipe = closeOnExecPipe() else { throw SpawnError(executable: executable, step: "pipe", code: errno) }
        guard let stderrPipe = closeOnExecPipe() else {
            close(stdoutPipe.read)
            close(stdoutPipe.write)
            throw SpawnError(executable: executable, step: "pipe", code: errno)
        }
        defer {
            // The child has its copies; ours must go, or EOF never comes.
            close(stdoutPipe.write)
            close(stderrPipe.write)
        }
        do {
            process = try SpawnedProcess(
                executable, arguments, environment: SpawnedProcess.currentEnvironment().merging(environment) { $1 },
                stdout: stdoutPipe.write, stderr: stderrPipe.write
            )
        } catch {
            close(stdoutPipe.read)
            close(stderrPipe.read)
            throw error
        }
        for (descriptor, isOutput) in [(stdoutPipe.read, true), (stderrPipe.read, false)] {
            readToEnd(descriptor) { [weak self] data in
                guard let self else { return }
                self.lock.withLock {
                    if let data {
                        if isOutput { self.output.append(data) } else { self.errors.append(data) }
                    } else {
                        self.closedStreams += 1
                    }
                }
            }
        }
    }

    public var stdout: String { lock.withLock { String(decoding: output, as: UTF8.self) } }
    public var stderr: String { lock.withLock { String(decoding: errors, as: UTF8.self) } }
    public var isRunning: Bool { process.isRunning }

    /// Waits (without blocking a thread) until stdout has a line equal to `line`; false if the
    /// process ends or `timeout` passes first.
    public func waitForLine(_ line: String, timeout: Duration = .seconds(30)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if stdout.split(separator: "\n").contains(where: { $0 == line }) { return true }
            if !process.isRunning { return stdout.split(separator: "\n").contains(where: { $0 == line }) }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    public func kill(_ signal: Int32 = SIGKILL) {
        process.signal(signal)
    }

    /// Waits (without blocking a thread) for the exit; kills the child if it still runs after `timeout`.
    @discardableResult
    public func finish(within timeout: Duration = .seconds(60)) async -> (status: Int32, stdout: String, stderr: String, timedOut: Bool) {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        let timedOut = process.isRunning
        if timedOut {
            kill(SIGKILL)
            while process.isRunning { try? await Task.sleep(for: .milliseconds(5)) }
        }
        // Everything the child wrote is in the pipes; wait briefly for the readers to reach EOF.
        let drained = ContinuousClock.now + .seconds(2)
        while lock.withLock({ closedStreams < 2 }) && ContinuousClock.now < drained {
            try? await Task.sleep(for: .milliseconds(2))
        }
        return (process.terminationStatus, stdout, stderr, timedOut)
    }
}

/// The C API with nothing of ours in between: what a hand-typed `sqlite3` session or another
/// language's driver does to the file.
public final class RawConnection {
    public let handle: OpaquePointer

    public init(_ path: String) {
        var handle: OpaquePointer?
        precondition(sqlite3_open(path, &handle) == SQLITE_OK)
        self.handle = handle!
        sqlite3_busy_timeout(handle, 10_000)
        sqlite3_exec(handle, "PRAGMA foreign_keys = ON", nil, nil, nil)
    }

    deinit { sqlite3_close(handle) }

    /// Runs `sql` with text arguments bound to ?1, ?2, …; returns the result code and the message.
    @discardableResult
    public func run(_ sql: String, _ arguments: String...) -> (code: Int32, message: String) {
        var statement: OpaquePointer?
        var code = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard code == SQLITE_OK else { return (code, String(cString: sqlite3_errmsg(handle))) }
        defer { sqlite3_finalize(statement) }
        for (index, argument) in arguments.enumerated() {
            sqlite3_bind_text(statement, Int32(index + 1), argument, -1, csqlite_transient())
        }
        repeat { code = sqlite3_step(statement) } while code == SQLITE_ROW
        return (code == SQLITE_DONE ? SQLITE_OK : code, String(cString: sqlite3_errmsg(handle)))
    }

    public func column(_ sql: String, _ arguments: String...) -> [String?] {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK else { return [] }
        defer { sqlite3_finalize(statement) }
        for (index, argument) in arguments.enumerated() {
            sqlite3_bind_text(statement, Int32(index + 1), argument, -1, csqlite_transient())
        }
        var values: [String?] = []
        while sqlite3_step(statement) == SQLITE_ROW {
            values.append(sqlite3_column_text(statement, 0).map { String(cString: $0) })
        }
        return values
    }

    public func value(_ sql: String, _ arguments: String...) -> String? {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK else { return nil }
        defer { sqlite3_finalize(statement) }
        for (index, argument) in arguments.enumerated() {
            sqlite3_bind_text(statement, Int32(index + 1), argument, -1, csqlite_transient())
        }
        guard sqlite3_step(statement) == SQLITE_ROW else { return nil }
        return sqlite3_column_text(statement, 0).map { String(cString: $0) }
    }
}

/// Opens a store on a new file in `directory`.
public func makeStore(_ directory: TemporaryDirectory, name: String = "delegations.db") throws -> DelegationStore {
    try DelegationStore(StoreConfiguration(path: directory.file(name), sourceWorkspaceID: "ws-self"), logger: quietLogger)
}

extension DelegationStore {
    /// The tool's `delegate_to_workspace` on this store, as an operator: how most tests enqueue.
    public func delegate(workspaceID: String, task: String, maxAttempts: Int? = nil) async throws -> JSONValue {
        try await DelegationTool(store: self, logger: quietLogger).delegate(workspaceID: workspaceID, task: task, maxAttempts: maxAttempts)
    }

    /// The tool's `check_delegation_status(task_id)`.
    public func checkStatus(taskID: String) async throws -> JSONValue {
        try await DelegationTool(store: self, logger: quietLogger).checkStatus(taskID: taskID)
    }

    /// The tool's `check_delegation_status()`.
    public func listAll() async throws -> JSONValue {
        try await DelegationTool(store: self, logger: quietLogger).listAll()
    }

    /// Cancels one delegation (as `delegation-admin cancel` does).
    public func cancel(id: String, reason: String = "cancelled by operator") async throws {
        try await cancel([id], reason: reason)
    }

    /// Retries one failed delegation.
    public func retry(id: String, by who: String = "operator") async throws {
        try await retry([id], by: who)
    }
}

/// Creates a migrated database file in `directory` and returns its path.
public func createDatabase(_ directory: TemporaryDirectory, name: String = "delegations.db") async throws -> String {
    let store = try makeStore(directory, name: name)
    await store.close()
    return directory.file(name)
}

/// Keeps every log line, so a test can assert that something was logged (an audit line, a warning).
public struct CapturingLogHandler: LogHandler {
    public final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var storage: [(Logger.Level, String, Logger.Metadata)] = []
        public func append(_ line: (Logger.Level, String, Logger.Metadata)) { lock.withLock { storage.append(line) } }
        public var all: [(level: Logger.Level, message: String, metadata: Logger.Metadata)] {
            lock.withLock { storage.map { (level: $0.0, message: $0.1, metadata: $0.2) } }
        }
    }

    public let lines: Lines
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .trace

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        lines.append((event.level, event.message.description, metadata.merging(event.metadata ?? [:]) { $1 }))
    }

    public static func logger() -> (Logger, Lines) {
        let lines = Lines()
        return (Logger(label: "test") { _ in CapturingLogHandler(lines: lines) }, lines)
    }
}

/// A logger that prints nothing below warnings: tests stay readable.
public let quietLogger: Logger = {
    var logger = Logger(label: "test")
    logger.logLevel = .warning
    return logger
}()

/// The package's root directory (for README.md, migrations/, scripts/).
public let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Polls `condition` every 20 ms until it holds or `timeout` passes; true when it held.
public func eventually(
    timeout: Duration = .seconds(20), _ condition: @Sendable () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

extension CheckThresholds {
    /// Nothing counts as stale, stuck or long queued: `check` then reports only what is wrong whatever the time.
    public static let nothingIsOld = CheckThresholds(staleBefore: "2000-01-01", stuckBefore: "2000-01-01", queuedBefore: "2000-01-01")
}
