//! Which invocation names are an assistant's tools rather than skills: an
//! import with `--tools all` and Claude Code's live events name every tool
//! call after its tool, and the dashboard shows skills and tools apart.

/// The built-in tools of Claude Code and Codex CLI, as their transcripts
/// and events name them.
const TOOLS: &[&str] = &[
    "AskUserQuestion",
    "Bash",
    "BashOutput",
    "Edit",
    "EnterPlanMode",
    "ExitPlanMode",
    "Glob",
    "Grep",
    "KillShell",
    "LS",
    "MultiEdit",
    "NotebookEdit",
    "NotebookRead",
    "Read",
    "Skill",
    "SlashCommand",
    "Task",
    "TaskOutput",
    "TodoRead",
    "TodoWrite",
    "WebFetch",
    "WebSearch",
    "Write",
    "apply_patch",
    "exec_command",
    "shell",
    "update_plan",
    "view_image",
    "write_stdin",
];

/// Whether `name` is an assistant's tool (a built-in one, or an MCP
/// server's, `mcp__server__tool`) rather than a skill.
pub fn is_tool(name: &str) -> bool {
    name.starts_with("mcp__") || TOOLS.binary_search(&name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_known_by_name_and_the_list_stays_sorted() {
        assert!(TOOLS.windows(2).all(|w| w[0] < w[1]), "keep TOOLS sorted");
        for tool in ["Bash", "Read", "mcp__github__create_issue", "apply_patch"] {
            assert!(is_tool(tool), "{tool}");
        }
        for skill in ["pdf", "crackerjack-run", "bash", "mcp", "Deploy"] {
            assert!(!is_tool(skill), "{skill}");
        }
    }
}
