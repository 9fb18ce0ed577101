import Foundation

/// Role-based permission to delegate, exactly as the seed tool decided it.
public enum RBAC {
    /// Roles holding the `delegate` permission (`admin` holds every permission).
    public static let delegatingRoles: Set<String> = ["admin", "operator", "no-approval"]

    public static func mayDelegate(_ roles: [String]) -> Bool {
        roles.contains(where: delegatingRoles.contains)
    }

    /// `WORKSPACE_ROLES` as a comma list; none configured means `["operator"]`.
    public static func roles(fromList list: String?) -> [String] {
        let roles = (list ?? "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        return roles.isEmpty ? ["operator"] : roles
    }

    /// The seed's denial text, roles written the way Python prints a list: `['read-only']`.
    public static func denial(_ roles: [String]) -> String {
        "RBAC: no 'delegate' permission. Roles: [" + roles.map { "'\($0)'" }.joined(separator: ", ") + "]"
    }
}
