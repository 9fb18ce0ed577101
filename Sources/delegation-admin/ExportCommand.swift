import ArgumentParser
import DelegationLogging
import DelegationStore
import DelegationTool
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

    @OptionGroup var local: CommonOptions
    @ParentCommand var parent: DelegationAdmin
    /// The global options given after the subcommand, else before it (`delegation-admin --db q.db list`).
    var options: CommonOptions { local.merged(with: parent.global) }
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

    func run() async throws {
        let query = filter.query(limit: limit)
        let format = self.format
        let withEvents = events
        let asDocument = options.json
        try await Admin.run(options, access: .readOnly) { store in
            let output = BufferedOutput()
            if asDocument { output.append("{\"delegations\":[") }
            let count = try await store.export(query, withEvents: withEvents) { delegation, events in
                let timeline: JSONValue? = events.map { .array($0.map(\.json)) }
                switch format {
                case .jsonl:
                    var object = delegation.json
                    if let timeline, case .object(var pairs) = object {
                        pairs.append(("events", timeline))
                        object = .object(pairs)
                    }
                    if asDocument, output.rows > 0 { output.append(",") }
                    output.append(object.serialized + (asDocument ? "" : "\n"))
                case .csv:
                    // The columns are the row's JSON keys, so the header always matches the schema.
                    guard case .object(let pairs) = delegation.json else { return }
                    if output.rows == 0 {
                        output.append((pairs.map(\.0) + (withEvents ? ["events"] : [])).joined(separator: ",") + "\n")
                    }
                    var fields = pairs.map { _, value -> String in
                        switch value {
                        case .null: ""
                        case .string(let text): text
                        default: value.serialized
                        }
                    }
                    if let timeline { fields.append(timeline.serialized) }
                    output.append(fields.map(Self.csvField).joined(separator: ",") + "\n")
                }
                output.rows += 1
            }
            if asDocument { output.append("],\"count\":\(count)}\n") }
            output.flush()
            if !asDocument, isatty(STDERR_FILENO) == 1 {
                FileDescriptorOutput.write("exported \(count) delegation(s)\n", to: STDERR_FILENO)
            }
            // The document, or the stream, is already on stdout.
            return Report(json: nil, text: "")
        }
    }

    /// RFC 4180: quoted when it holds a comma, quote or line break; quotes doubled.
    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
