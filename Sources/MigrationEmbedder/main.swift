import Foundation

/// Build-time tool: `MigrationEmbedder OUTPUT.swift 0001_x.sql 0002_y.sql …`.
///
/// Writes `EmbeddedMigrations.all`, one entry per file in the given order, with the file's exact bytes
/// as a raw string literal (delimited by more `#` than any run in the text, so no escaping is needed).
let arguments = CommandLine.arguments.dropFirst()
guard let outputPath = arguments.first else {
    FileHandle.standardError.write(Data("usage: MigrationEmbedder OUTPUT.swift FILE.sql...\n".utf8))
    exit(2)
}

var entries: [String] = []
for path in arguments.dropFirst() {
    let url = URL(fileURLWithPath: path)
    let name = url.deletingPathExtension().lastPathComponent
    guard let digits = name.split(separator: "_").first, let version = Int(digits) else {
        FileHandle.standardError.write(Data("error: \(url.lastPathComponent): migration files are named NNNN_description.sql\n".utf8))
        exit(1)
    }
    let sql = try String(contentsOf: url, encoding: .utf8)
    var longestRun = 0
    var run = 0
    for character in sql {
        run = character == "#" ? run + 1 : 0
        longestRun = max(longestRun, run)
    }
    let hashes = String(repeating: "#", count: longestRun + 1)
    entries.append(
        """
                Migration(version: \(version), name: "\(name)", sql: \(hashes)\"\"\"
        \(sql)
        \"\"\"\(hashes)),
        """
    )
}

let source = "// Generated at build time by MigrationEmbedder from migrations/*.sql. Do not edit.\n"
    + "enum EmbeddedMigrations {\n"
    + "    static let all: [Migration] = [\n"
    + entries.joined(separator: "\n") + "\n"
    + "    ]\n"
    + "}\n"
try source.write(to: URL(fileURLWithPath: outputPath), atomically: true, encoding: .utf8)
