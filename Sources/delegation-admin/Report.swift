import DelegationTool

/// What a subcommand has to say: the same facts for scripts (`json`) and for people (`text`).
struct Report {
    /// Nil when the command already streamed its document (export).
    var json: JSONValue?
    var text: String
    /// The command ran but its answer is "no" (a failed `check`): exit 1 after printing.
    var failed = false
}
