import ArgumentParser
import DelegationLogging
import DelegationMCP
import DelegationStore
import DelegationTool
import Foundation
import Logging
import MCP

/// `delegation-mcp`: the delegation tools as an MCP server on stdio, for agents (Claude Desktop, IDEs).
///
/// Only options and lifetimes live here; the tools are `DelegationMCPServer`. Stdout carries nothing but
/// the protocol (logs go to stderr); the process exits 0 when stdin closes or on SIGTERM/SIGINT, after
/// answering what it received and closing the store.
@main
struct DelegationMCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delegation-mcp",
        abstract: "The delegation tools (delegate, check, list, cancel) as a Model Context Protocol server on stdio.",
        discussion: """
            Speaks newline-delimited JSON-RPC on stdin/stdout; logs go to stderr. Exits 0 when stdin closes or on \
            SIGTERM/SIGINT, after answering the requests already received. \
            Uses the same SQLite file as delegation-worker (created and migrated if missing). \
            WORKSPACE_ID is stored as each delegation's source workspace; WORKSPACE_ROLES (comma list, default \
            operator) decides whether delegate_to_workspace is allowed. Also honours DELEGATION_SYNCHRONOUS and \
            DELEGATION_BUSY_TIMEOUT_MS.
            """)

    @Option(help: "SQLite database file (env DELEGATION_DB; default ./delegations.db).")
    var db: String?

    @Option(name: .customLong("log-format"), help: "text or json, on stderr (env LOG_FORMAT; default text).")
    var logFormat: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (env LOG_LEVEL; default info).")
    var logLevel: String?

    func run() async throws {
        // A client that went away (its end of stdout closed) must make writes fail, not kill the process
        // before it closes the store.
        signal(SIGPIPE, SIG_IGN)
        let environment = ProcessInfo.processInfo.environment
        let format: LogFormat
        do {
            format = try LogFormat.resolve(flag: logFormat, environment: environment)
        } catch {
            throw ValidationError(error.description)
        }
        let levelName = logLevel ?? environment["LOG_LEVEL"].flatMap { $0.isEmpty ? nil : $0 } ?? "info"
        guard let level = Logger.Level(rawValue: levelName.lowercased()) else {
            throw ValidationError(
                "\(logLevel == nil ? "LOG_LEVEL" : "--log-level") must be one of trace, debug, info, notice, warning, error, critical, not '\(levelName)'")
        }
        format.bootstrap(level: level)
        let logger = Logger(label: "delegation.mcp")

        // SIGTERM (a client or supervisor stopping us) and SIGINT end the input as EOF does. Installed before
        // the store opens, so a signal during start-up ends the session as soon as it begins.
        let inputEnd = InputEnd()
        let signals = [SIGTERM, SIGINT].map { number in
            // Darwin's signal sources need the default action off. Linux's dispatch installs its own handler,
            // and ignoring the signal first dropped one arriving before that (the session then ran on).
            #if canImport(Darwin)
            signal(number, SIG_IGN)
            #endif
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                let name = number == SIGTERM ? "SIGTERM" : "SIGINT"
                guard inputEnd.trigger() else {
                    // A second signal: stop waiting for the answers owed (SQLite keeps what was committed).
                    logger.warning("second signal; exiting now", metadata: ["signal": "\(name)"])
                    signal(number, SIG_DFL)
                    kill(getpid(), number)
                    return
                }
                logger.notice("signal received; answering what was received, then closing the store", metadata: ["signal": "\(name)"])
            }
            source.resume()
            return source
        }
        defer { for source in signals { source.cancel() } }
        let store: DelegationStore
        do {
            var configuration = try StoreConfiguration.fromEnvironment(environment)
            if let db { configuration.path = db }
            store = try DelegationStore(configuration, logger: Logger(label: "delegation.store"))
        } catch {
            logger.critical("cannot open the delegation store", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        let tool = DelegationTool(store: store, environment: environment, logger: Logger(label: "delegation.tool"))
        let server = DelegationMCPServer(tool: tool, logger: logger)
        logger.info(
            "serving MCP on stdio",
            metadata: [
                "db": "\(store.configuration.path)", "roles": "\(tool.roles.joined(separator: ","))",
                "workspace_id": "\(tool.sourceWorkspaceID ?? "-")",
            ])
        do {
            try await server.run(transport: StdioTransport(logger: Logger(label: "mcp.transport.stdio")), drainTimeout: .seconds(10), inputEnd: inputEnd)
        } catch {
            logger.critical("the MCP server failed", metadata: ["error": "\(error)"])
            await store.close()
            throw ExitCode(1)
        }
        await store.close()
        logger.info("input ended; store closed, exiting")
    }
}
