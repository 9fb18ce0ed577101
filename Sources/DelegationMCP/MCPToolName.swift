/// The four tools the server offers, by the names agents call them.
///
/// `delegate_to_workspace` and `check_delegation_status` keep the original tool's names, so prompts
/// and agents written for it keep working; `list_delegations` and `cancel_delegation` are what the
/// admin CLI's `list` and `cancel` do, offered to agents.
public enum MCPToolName: String, Sendable, CaseIterable {
    case delegateToWorkspace = "delegate_to_workspace"
    case checkDelegationStatus = "check_delegation_status"
    case listDelegations = "list_delegations"
    case cancelDelegation = "cancel_delegation"
}
