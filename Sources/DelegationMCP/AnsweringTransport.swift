import DelegationTool
import Foundation
import Logging
import MCP

/// The transport the server speaks over, wrapped so that it knows which requests are still owed an
/// answer.
///
/// The SDK's server handles every request in a task of its own and its message loop ends as soon as
/// the input does. A client that writes a request and closes stdin at once (`echo … | delegation-mcp`,
/// or a client shutting down) would lose the answer if the process exited, or closed the store, when
/// the loop ended. `waitUntilAnswered` lets the server wait for those answers first. Requests are
/// counted by id as they arrive (before the server sees them) and crossed off as their responses are
/// sent; a `notifications/cancelled` crosses one off too (a cancelled request gets no answer). It also
/// escapes `tools/call` string arguments that the SDK would otherwise mangle (`DataURLEscaping`).
actor AnsweringTransport: Transport {
    private let inner: any Transport
    nonisolated let logger: Logger
    /// Ids (as JSON text) of requests received and not yet answered.
    private var owed: Set<String> = []
    private var pump: Task<Void, Never>?
    /// The stream the server reads, so that `endInput` can finish it.
    private var incoming: AsyncThrowingStream<Data, any Error>.Continuation?
    /// Set by `endInput`: nothing more is handed to the server.
    private var inputEnded = false
    /// The input is over (EOF, `endInput`, or the server's loop ended): `waitUntilInputIsOver` returns.
    private var inputOver = false
    private var inputOverWaiters: [CheckedContinuation<Void, Never>] = []
    /// The server's message loop has ended (`noteLoopEnded`).
    private(set) var loopEnded = false
    /// When each write still in progress began: one that has lasted is a client not reading its answers.
    private var sendsInProgress: [UInt64: ContinuousClock.Instant] = [:]
    private var nextSend: UInt64 = 0

    init(_ inner: any Transport, logger: Logger) {
        self.inner = inner
        self.logger = logger
    }

    func connect() async throws { try await inner.connect() }

    func disconnect() async {
        pump?.cancel()
        await inner.disconnect()
    }

    /// A response that cannot be written (the client closed its end) is crossed off too: it never will be.
    func send(_ data: Data) async throws {
        let token = nextSend
        nextSend &+= 1
        sendsInProgress[token] = .now
        defer {
            sendsInProgress[token] = nil
            for id in Self.responseIDs(in: data) { owed.remove(id) }
        }
        try await inner.send(data)
    }

    /// How long the oldest write still in progress has been trying (nil: none is).
    var longestSendInProgress: Duration? {
        sendsInProgress.values.min().map { ContinuousClock.now - $0 }
    }

    /// The inner transport's messages, each noted before the server gets it. The end of the input —
    /// EOF, or a paired transport disconnecting — ends the stream normally: it is how a stdio session ends.
    func receive() -> AsyncThrowingStream<Data, any Error> {
        let (stream, continuation) = AsyncThrowingStream<Data, any Error>.makeStream()
        incoming = continuation
        // Ended before the server asked for its input (a signal during start-up): nothing is read.
        if inputEnded {
            continuation.finish()
            return stream
        }
        let inner = self.inner
        let logger = self.logger
        pump = Task {
            do {
                for try await message in await inner.receive() {
                    if self.inputEnded { break }
                    continuation.yield(self.noteIncoming(message))
                }
                logger.debug("input ended")
            } catch {
                logger.debug("input ended", metadata: ["reason": "\(error)"])
            }
            continuation.finish()
            await self.noteInputOver()
        }
        return stream
    }

    /// Returns when the input is over — EOF, `endInput`, or the server's loop ended (`noteLoopEnded`) —
    /// at once if it is already. A session lasts as long as its input: this has no deadline of its own.
    func waitUntilInputIsOver() async {
        if inputOver { return }
        await withCheckedContinuation { inputOverWaiters.append($0) }
    }

    /// The server's message loop ended (after the input, or on its own): the session is over either way.
    func noteLoopEnded() {
        loopEnded = true
        noteInputOver()
    }

    private func noteInputOver() {
        inputOver = true
        let waiters = inputOverWaiters
        inputOverWaiters = []
        for waiter in waiters { waiter.resume() }
    }

    /// Ends the input as EOF would (SIGTERM): what arrives from now on is not read; what was received is
    /// still answered.
    func endInput() {
        inputEnded = true
        incoming?.finish()
        pump?.cancel()
        noteInputOver()
    }

    /// How many requests are still waiting for their answer.
    var owedCount: Int { owed.count }

    /// Waits until every request received has been answered, or `timeout` passes; true when none is owed.
    func waitUntilAnswered(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !owed.isEmpty && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        return owed.isEmpty
    }

    /// Notes the requests in an incoming message, and returns the message to hand to the server (with
    /// `tools/call` arguments that look like data URLs escaped: `DataURLEscaping`).
    private func noteIncoming(_ message: Data) -> Data {
        guard let json = try? JSONValue.parse(message) else { return message }
        let items = json.arrayValue ?? [json]
        for item in items {
            guard let method = item["method"]?.stringValue else { continue }
            if let id = item["id"].flatMap(Self.key) {
                owed.insert(id)
            } else if method == CancelledNotification.name, let id = item["params"]?["requestId"].flatMap(Self.key) {
                owed.remove(id)
            }
        }
        let escaped = items.map { DataURLEscaping.escapeArguments(in: $0) }
        guard escaped.contains(where: { $0 != nil }) else { return message }
        let rewritten = zip(items, escaped).map { $1 ?? $0 }
        return Data((json.arrayValue == nil ? rewritten[0] : .array(rewritten)).serialized.utf8)
    }

    /// The ids of the responses in an outgoing message (one response, or a batch of them).
    private static func responseIDs(in message: Data) -> [String] {
        items(of: message).compactMap { item in
            item["method"] == nil ? item["id"].flatMap(key) : nil
        }
    }

    private static func items(of message: Data) -> [JSONValue] {
        guard let json = try? JSONValue.parse(message) else { return [] }
        return json.arrayValue ?? [json]
    }

    /// The SDK's ids are strings or integers; anything else is never tracked (it could not be answered by id).
    private static func key(_ id: JSONValue) -> String? {
        switch id {
        case .string, .int: id.serialized
        case .double: id.intValue.map { JSONValue.int($0).serialized }
        default: nil
        }
    }
}
