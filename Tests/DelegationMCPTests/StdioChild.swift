import ChildProcess
import Foundation
import Synchronization

/// A child process driven over pipes on all three standard streams, as an MCP client drives a stdio
/// server: lines written to its stdin, its stdout and stderr collected as they come (`TestSupport.Child`
/// does not expose stdin).
/// `@unchecked Sendable`: the file handles are not `Sendable`; the collected output is behind a mutex.
final class StdioChild: @unchecked Sendable {
    private let process: SpawnedProcess
    private let input: FileHandle
    private let collected = Collected()
    /// Stdout's read end when it is not read (a client that stopped reading its answers).
    private let unreadStdout: FileHandle?
    private let streamsRead: Int

    /// What the child wrote so far, shared with the reader threads.
    private final class Collected: Sendable {
        struct State {
            var stdout = Data()
            var stderr = Data()
            var closedStreams = 0
        }
        private let state = Mutex(State())
        func withLock<T>(_ body: (inout State) -> T) -> T { state.withLock { body(&$0) } }
    }

    /// `readsStdout` false: the child's stdout is a pipe nobody reads, as from a client that stopped reading.
    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], readsStdout: Bool = true) throws {
        // Close-on-exec on our ends: a child started by another test must not inherit them, or the EOF
        // we send (closing stdin) or wait for (stdout, stderr) would wait for that child too.
        guard let stdin = closeOnExecPipe(), let stdout = closeOnExecPipe(), let stderr = closeOnExecPipe() else {
            throw SpawnError(executable: executable, step: "pipe", code: errno)
        }
        // A write to a child that already exited must fail with EPIPE, not kill the test process.
        signal(SIGPIPE, SIG_IGN)
        defer {
            // The child has its copies of these ends.
            close(stdin.read)
            close(stdout.write)
            close(stderr.write)
        }
        do {
            process = try SpawnedProcess(
                executable, arguments, environment: SpawnedProcess.currentEnvironment().merging(environment) { $1 },
                stdin: stdin.read, stdout: stdout.write, stderr: stderr.write
            )
        } catch {
            close(stdin.write)
            close(stdout.read)
            close(stderr.read)
            throw error
        }
        // Written only (never a readability handler on it); closed by closeStdin or when released.
        input = FileHandle(fileDescriptor: stdin.write, closeOnDealloc: true)
        unreadStdout = readsStdout ? nil : FileHandle(fileDescriptor: stdout.read, closeOnDealloc: true)
        streamsRead = readsStdout ? 2 : 1
        for (descriptor, isOutput) in readsStdout ? [(stdout.read, true), (stderr.read, false)] : [(stderr.read, false)] {
            readToEnd(descriptor) { [collected] data in
                collected.withLock {
                    if let data {
                        if isOutput { $0.stdout.append(data) } else { $0.stderr.append(data) }
                    } else {
                        $0.closedStreams += 1
                    }
                }
            }
        }
    }

    var stdout: String { collected.withLock { String(decoding: $0.stdout, as: UTF8.self) } }
    var stderr: String { collected.withLock { String(decoding: $0.stderr, as: UTF8.self) } }
    var stdoutLines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty } }

    /// Writes one newline-delimited message.
    func send(_ line: String) throws {
        try input.write(contentsOf: Data((line + "\n").utf8))
    }

    func send(signal number: Int32) { process.signal(number) }
    var wasSignalled: Bool { process.wasSignalled }

    /// Closing stdin is how an MCP client ends a stdio session.
    func closeStdin() throws {
        try input.close()
    }

    /// Waits (without blocking a thread) for a stdout line that `matches`; nil if the process ends or `timeout` passes first.
    func waitForLine(timeout: Duration = .seconds(20), where matches: (String) -> Bool) async -> String? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let line = stdoutLines.first(where: matches) { return line }
            if !process.isRunning || ContinuousClock.now >= deadline { return stdoutLines.first(where: matches) }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Waits for the exit; kills the child if it still runs after `timeout`. Then waits briefly for both
    /// output pipes to reach EOF, so everything it wrote has been collected.
    func finish(within timeout: Duration) async -> (status: Int32, timedOut: Bool) {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        let timedOut = process.isRunning
        if timedOut {
            process.signal(SIGKILL)
            while process.isRunning { try? await Task.sleep(for: .milliseconds(5)) }
        }
        let drained = ContinuousClock.now + .seconds(2)
        while collected.withLock({ $0.closedStreams < streamsRead }) && ContinuousClock.now < drained {
            try? await Task.sleep(for: .milliseconds(2))
        }
        return (process.terminationStatus, timedOut)
    }
}
