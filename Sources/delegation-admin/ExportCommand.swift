import ArgumentParser
import DelegationStore
import Foundation

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Stream delegations (every column) as JSON Lines or CSV, with the same filters as list.",
        discussion: """
            Rows are streamed from one read snapshot, so exporting a large table holds only a buffer in \
            memory and never blocks a worker. With --json the output is one JSON document \
            {"delegations": [...], "count": N}, still streamed.
            """)

    @OptionGroup var options: CommonOptions
    @OptionGroup var filter: ListFilter

    enum Format: String, ExpressibleByArgument, CaseIterable { case jsonl, csv }

    @Option(help: "jsonl (one JSON object per line) or csv.")
    var format: Format = .jsonl

    @Flag(help: "Include each delegation's event timeline (an \"events\" array; a JSON text column in CSV).")
    var events = false

    @Option(help: "At most this many rows (default: all).")
    var limit: Int?

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be 1 or more, not \(limit)") }
        if options.json, format == .csv { throw ValidationError("--json writes one JSON document; it cannot go with --format csv") }
    }

    static let csvColumns = [
        "id", "workspace_id", "source_workspace_id", "task", "status", "result", "error", "attempts", "max_attempts",
        "next_run_at", "lease_owner", "lease_expires_at", "message_id", "traceparent", "remote_task_id",
        "created_at", "updated_at", "finished_at",
    ]

    func run() async throws {
        let (condition, arguments) = filter.whereClause
        let sql = "SELECT \(Delegation.columns) FROM delegations \(condition) \(filter.orderClause) LIMIT ?"
        let limit = self.limit ?? -1
        let format = self.format
        let withEvents = events
        let asDocument = options.json
        try await Admin.run(options) { store in
            let count = try await store.read("exporting delegations") { database -> Int in
                let output = BufferedOutput()
                if asDocument { output.append("{\"delegations\":[") }
                if format == .csv {
                    output.append((Self.csvColumns + (withEvents ? ["events"] : [])).joined(separator: ",") + "\n")
                }
                var count = 0
                try database.forEachRow(sql, arguments: arguments + [limit]) { row in
                    let delegation = Delegation(row: row)
                    let timeline: JSONValue? = withEvents ? try Self.events(database, id: delegation.id) : nil
                    switch format {
                    case .jsonl:
                        var object = delegation.json
                        if let timeline, case .object(var pairs) = object {
                            pairs.append(("events", timeline))
                            object = .object(pairs)
                        }
                        if asDocument, count > 0 { output.append(",") }
                        output.append(object.serialized + (asDocument ? "" : "\n"))
                    case .csv:
                        var fields = row.values.map { value -> String in
                            switch value {
                            case .null: ""
                            case .integer(let number): String(number)
                            default: value.string ?? ""
                            }
                        }
                        if let timeline { fields.append(timeline.serialized) }
                        output.append(fields.map(Self.csvField).joined(separator: ",") + "\n")
                    }
                    count += 1
                }
                if asDocument { output.append("],\"count\":\(count)}\n") }
                output.flush()
                return count
            }
            if !asDocument, isatty(STDERR_FILENO) == 1 {
                FileHandle.standardError.write(Data("exported \(count) delegation(s)\n".utf8))
            }
            // The document, or the stream, is already on stdout.
            return Report(json: nil, text: "")
        }
    }

    static func events(_ database: Database, id: String) throws -> JSONValue {
        .array(try database.query(
            "SELECT \(DelegationEvent.columns) FROM delegation_events WHERE delegation_id = ? ORDER BY id", id
        ).map { DelegationEvent(row: $0).json })
    }

    /// RFC 4180: quoted when it holds a comma, quote or line break; quotes doubled.
    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// Stdout in 64 KiB writes: one write per row would dominate a large export.
final class BufferedOutput {
    private var buffer: [UInt8] = []

    init() { buffer.reserveCapacity(1 << 16) }

    func append(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        FileHandle.standardOutput.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}
