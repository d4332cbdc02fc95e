//! The subgraph SDL, with the authorization directives async-graphql cannot emit.
//!
//! async-graphql writes Federation v2 SDL with `@key` but has no way to put
//! `@authenticated` on a field, so [`annotate_sdl`] adds the directives of
//! [`FIELD_RULES`] (and the `@link` import they need) to its output. Its
//! result is [`crate::schema_sdl`], which `_service { sdl }` answers too, so
//! the composed supergraph and the live subgraph agree.

use super::guard::{Rule, ADMIN, AUTHENTICATED};

/// Every guarded field: `(type, field, rule)`. Resolvers carry the same rule.
pub const FIELD_RULES: &[(&str, &str, Rule)] = &[
    ("Mutation", "logoutAll", AUTHENTICATED),
    ("Mutation", "revokeSession", AUTHENTICATED),
    ("Mutation", "changePassword", AUTHENTICATED),
    ("Mutation", "deleteAccount", AUTHENTICATED),
    ("Mutation", "beginTotpEnrollment", AUTHENTICATED),
    ("Mutation", "confirmTotpEnrollment", AUTHENTICATED),
    ("Mutation", "disableMfa", AUTHENTICATED),
    ("Mutation", "unlinkIdentity", AUTHENTICATED),
    ("Mutation", "setUserRoles", ADMIN),
    ("Mutation", "setUserActive", ADMIN),
    ("User", "sessions", AUTHENTICATED),
];

/// Adds the directives of [`FIELD_RULES`] to async-graphql's SDL and imports
/// them in the federation `@link`.
pub fn annotate_sdl(sdl: &str) -> String {
    let mut out = String::with_capacity(sdl.len() + 512);
    let mut current_type: Option<&str> = None;
    // Set while inside a field whose arguments span several lines.
    let mut open_field: Option<&str> = None;
    for source in sdl.lines() {
        let mut line = source.to_owned();
        let trimmed = source.trim_start();
        if !source.starts_with(char::is_whitespace) {
            current_type = type_name(trimmed);
            open_field = None;
        } else if let Some(ty) = current_type {
            // async-graphql indents with one tab per level.
            let depth_one = source.starts_with('\t') && !source.starts_with("\t\t");
            if depth_one && !trimmed.starts_with(')') && !trimmed.starts_with('"') {
                let name_end = trimmed.find(['(', ':']).unwrap_or(trimmed.len());
                let name = &trimmed[..name_end];
                let opens_args = trimmed[name_end..].starts_with('(') && !trimmed.contains("):");
                if opens_args {
                    open_field = rule_for(ty, name).map(|_| name_static(name));
                } else if let Some(rule) = rule_for(ty, name) {
                    line.push(' ');
                    line.push_str(&rule.directive());
                }
            } else if depth_one && trimmed.starts_with(')') {
                if let Some(name) = open_field.take() {
                    if let Some(rule) = rule_for(ty, name) {
                        line.push(' ');
                        line.push_str(&rule.directive());
                    }
                }
            }
        }
        if line.contains("import: [") && line.contains("\"@key\"") && !line.contains("\"@authenticated\"") {
            line = line.replacen("import: [", "import: [\"@authenticated\", ", 1);
            if !line.contains("\"@requiresScopes\"") {
                line = line.replacen("import: [", "import: [\"@requiresScopes\", ", 1);
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn type_name(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("extend ").unwrap_or(line);
    let rest = rest.strip_prefix("type ").or_else(|| rest.strip_prefix("interface "))?;
    rest.split(|c: char| c.is_whitespace() || c == '{').next()
}

fn rule_for(ty: &str, field: &str) -> Option<Rule> {
    FIELD_RULES.iter().find(|(t, f, _)| *t == ty && *f == field).map(|(_, _, rule)| *rule)
}

/// The table's own `&'static str` for a field name it contains.
fn name_static(name: &str) -> &'static str {
    FIELD_RULES.iter().find(|(_, f, _)| *f == name).map(|(_, f, _)| *f).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_land_on_single_and_multi_line_fields() {
        let sdl = "type Mutation {\n\tlogoutAll: Int!\n\tsetUserRoles(\n\t\t\"who\"\n\t\tuserId: ID!\n\t): User!\n\tlogin(login: String!): Boolean!\n}\n\ntype User @key(fields: \"id\") {\n\tsessions: [Session!]!\n}\nextend schema @link(\n\turl: \"https://specs.apollo.dev/federation/v2.5\",\n\timport: [\"@key\", \"@requiresScopes\"]\n)\n";
        let out = annotate_sdl(sdl);
        assert!(out.contains("\tlogoutAll: Int! @authenticated\n"), "{out}");
        assert!(out.contains("\t): User! @requiresScopes(scopes: [[\"admin\"]])\n"), "{out}");
        assert!(out.contains("\tlogin(login: String!): Boolean!\n"), "{out}");
        assert!(out.contains("\tsessions: [Session!]! @authenticated\n"), "{out}");
        assert!(out.contains("import: [\"@authenticated\", \"@key\""), "{out}");
    }
}
